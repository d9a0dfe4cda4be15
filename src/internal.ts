/**
 * What the `fmq` command needs beyond the public API (src/index.ts): the settings layers of
 * each command (defaults < ZPL config < flags) and the track tool. The CLI imports only this
 * file and src/index.ts (test/unit/layers.test.ts holds it to that); tests of internals may
 * import it too.
 *
 * @packageDocumentation
 */
export {
  checkEndpoint,
  clientConfig,
  resolveClientSettings,
  resolveServerSettings,
  serverConfig,
  type ClientConfig,
  type ClientFlags,
  type ClientSettings,
  type ServerConfig,
  type ServerFlags,
  type ServerSettings,
} from './config/settings.js'
export { Track, TrackError } from '../track/track.js'
