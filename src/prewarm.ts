/**
 * A light entry point (nothing but node:worker_threads behind it): starts the server thread of
 * a track ahead of need. See track/prewarm.ts.
 *
 * @packageDocumentation
 */
export { prewarmServerThread } from '../track/prewarm.js'
