/**
 * The status page served at `/`: one self-contained HTML document (no CDN, no build step)
 * that polls `/api/status` every second and renders it, for a server, client, relay or track. Text is
 * set with textContent only, so a file name can never inject markup.
 *
 * @packageDocumentation
 */

export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fmq status</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 0.5rem 1rem; color: #222; background: #fafafa; }
  h1 { font-size: 1.3rem; margin: 0.5rem 0; }
  h2 { font-size: 1.05rem; margin: 1.2rem 0 0.3rem; }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  th, td { text-align: left; padding: 0.25rem 0.5rem; border-bottom: 1px solid #ddd; vertical-align: top; }
  th { background: #eee; font-weight: 600; }
  td.n { text-align: right; font-variant-numeric: tabular-nums; }
  .muted { color: #777; }
  .bad { color: #a00; }
  progress { width: 8rem; }
  #summary span { margin-right: 1.2rem; display: inline-block; overflow-wrap: anywhere; }
  .scroll { overflow-x: auto; }
  @media (max-width: 40rem) { th.wide, td.wide { display: none; } }
</style>
</head>
<body>
<h1>fmq <span id="role">…</span></h1>
<p id="summary" class="muted">loading…</p>
<div id="sections"></div>
<h2>Recent warnings and errors</h2>
<ul id="recent"><li class="muted">none</li></ul>
<script>
"use strict";
const units = ["B", "KiB", "MiB", "GiB", "TiB"];
function size(n) { let i = 0; while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; } return (i === 0 ? n : n.toFixed(1)) + " " + units[i]; }
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}
function table(id, heads, rows) {
  return el("div", { class: "scroll" }, el("table", { id }, el("thead", {}, el("tr", {}, ...heads.map(([h, cls]) => el("th", cls ? { class: cls } : {}, h)))),
    el("tbody", {}, ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: heads.length, class: "muted" }, "none"))]))));
}
function td(value, cls) { return el("td", cls ? { class: cls } : {}, value); }
function current(file, done) {
  if (!file) return td("—", "muted");
  const total = file.size == null ? null : file.size;
  const cell = el("td", {}, file.virtualPath + " ");
  if (total) cell.append(el("progress", { max: total, value: done }), " " + Math.floor(100 * done / total) + "%");
  return cell;
}
function ago(iso) { if (!iso) return "—"; const s = Math.round((Date.now() - Date.parse(iso)) / 1000); return s < 1 ? "now" : s + " s ago"; }
function render(status) {
  document.getElementById("role").textContent = status.role + " " + status.version;
  const summary = document.getElementById("summary");
  summary.replaceChildren();
  const sections = document.getElementById("sections");
  sections.replaceChildren();
  const fact = (id, text) => summary.append(el("span", { id }, text));
  fact("uptime", "up " + status.uptimeSeconds + " s");
  // A server has mounts and clients, a client or track servers; a relay both.
  if (status.mounts) {
    fact("bytes-sent", "sent " + size(status.totals.bytesSent));
    fact("files-sent", status.totals.filesSent + " files sent");
    fact("files-published", status.totals.filesPublished + " files published");
    if (status.totals.loginsFailed) fact("logins-failed", status.totals.loginsFailed + " failed logins");
    sections.append(el("h2", {}, "Mounts"), table("mounts", [["Virtual path"], ["Folder", "wide"], ["Files"], ["Size"]],
      status.mounts.map((m) => el("tr", {}, td(m.virtualPath), td(m.location, "wide"), td(m.files, "n"), td(size(m.bytes), "n")))));
    sections.append(el("h2", {}, "Clients"), table("clients", [["Login"], ["Identity", "wide"], ["Subscriptions"], ["Sent"], ["Files"], ["Sending"], ["Last heard", "wide"]],
      status.clients.map((c) => el("tr", {}, td(c.login), td(c.identity.slice(0, 12) + " v" + c.protocolVersion, "wide"), td(c.subscriptions.join(", ") || "—"),
        td(size(c.bytesSent), "n"), td(c.filesSent, "n"), current(c.currentFile, c.currentFile ? c.currentFile.offset : 0), td(ago(c.lastHeard), "wide")))));
  }
  if (status.servers) {
    fact("bytes-received", "received " + size(status.totals.bytesReceived));
    fact("files-delivered", status.totals.filesDelivered + " files delivered");
    if (status.source) fact("source", "from " + status.source);
    if (status.inbox) fact("inbox", (status.source ? "to " : "inbox ") + status.inbox);
    sections.append(el("h2", {}, status.mounts ? "Upstream servers" : "Servers"), table("servers", [["Endpoint"], ["State"], ["Subscriptions", "wide"], ["Received"], ["Files", "wide"], ["Pending", "wide"], ["Receiving"], ["Last sync", "wide"]],
      status.servers.map((s) => el("tr", {}, td(s.endpoint), td(s.state, s.state === "connected" ? "" : "bad"), td(s.subscriptions.join(", ") || "—", "wide"),
        td(size(s.bytesReceived), "n"), td(s.filesDelivered, "n wide"), td(s.pending, "n wide"), current(s.currentFile, s.currentFile ? s.currentFile.bytes : 0), td(ago(s.lastSync), "wide")))));
    sections.append(el("h2", {}, "Recent deliveries"), table("deliveries", [["Time"], ["File"], ["Size"]],
      status.deliveries.slice().reverse().map((d) => el("tr", {}, td(d.time.slice(11, 19)), td(d.virtualPath), td(size(d.size), "n")))));
  }
  const recent = document.getElementById("recent");
  recent.replaceChildren(...(status.recent.length ? status.recent.slice().reverse().map((r) => el("li", { class: r.level === "info" ? "" : "bad" }, r.time.slice(11, 19) + " " + r.text)) : [el("li", { class: "muted" }, "none")]));
}
async function poll() {
  try {
    const response = await fetch("api/status", { cache: "no-store" });
    render(await response.json());
  } catch (error) {
    document.getElementById("summary").textContent = "cannot reach the node: " + error.message;
  }
  setTimeout(poll, 1000);
}
poll();
</script>
</body>
</html>
`
