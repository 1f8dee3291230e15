/* The support chat widget: one script tag, no framework, no build step.
 *
 *   <script src="https://support.example.com/widget.js" async
 *           data-user="42" data-user-hash="…" data-name="Olga"></script>
 *
 * It draws a launcher and a panel inside a shadow root (the site's styles and its
 * own stay apart), talks to the gateway over a WebSocket or, where one cannot get
 * through, a long poll, and keeps in localStorage the visitor's token, the last
 * message it has, and the messages not yet acknowledged: a message is sent again,
 * with the same client id, until the gateway says it is stored. Everything people
 * wrote is put on the page as text, never as HTML.
 */
(function () {
  "use strict";
  if (window.SupportChat) return;
  var script = document.currentScript;
  var data = (script && script.dataset) || {};
  var BASE = "__PUBLIC_URL__" || (data.gateway || (script ? script.src.replace(/\/widget\.js(\?.*)?$/, "") : ""));
  var KEY = "supportchat:" + BASE;
  var saved = load();
  // a new page has no messages yet: it reads the history whole, not after a cursor
  delete saved.after; delete saved.since;
  var session = null, socket = null, mode = data.transport === "poll" ? "poll" : "socket";
  var failedOpens = 0, retry = 0, timer = null, polling = false, stopped = false;
  var messages = {}, order = [], choices = null, unread = 0, loaded = false, askedNow = false;
  var ui = {}, notice = null;

  function load() {
    try { return JSON.parse(localStorage.getItem(KEY)) || {}; } catch (e) { return {}; }
  }
  function store() {
    try { localStorage.setItem(KEY, JSON.stringify(saved)); } catch (e) { /* private mode */ }
  }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var name in attrs || {}) node.setAttribute(name, attrs[name]);
    if (text != null) node.textContent = text;
    return node;
  }
  function cid() {
    var bytes = new Uint8Array(12);
    (window.crypto || {}).getRandomValues ? crypto.getRandomValues(bytes) : bytes.forEach(function (_, i) { bytes[i] = Math.random() * 256; });
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function post(call, body) {
    return fetch(BASE + "/web/" + call, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (!response.ok) { answer.status = response.status; throw answer; }
        return answer;
      });
    });
  }

  var CSS = [
    ":host{all:initial}",
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}",
    ".launcher{position:fixed;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;cursor:pointer;background:var(--c);color:#fff;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000;display:flex;align-items:center;justify-content:center}",
    ".launcher:focus-visible,button:focus-visible,textarea:focus-visible,input:focus-visible{outline:3px solid #111;outline-offset:2px}",
    ".badge{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;border-radius:10px;background:#d00;color:#fff;font-size:12px;line-height:20px;text-align:center;padding:0 5px}",
    ".panel{position:fixed;bottom:88px;width:370px;max-width:calc(100vw - 24px);height:560px;max-height:calc(100vh - 110px);background:#fff;color:#111;border-radius:14px;box-shadow:0 8px 30px rgba(0,0,0,.25);display:flex;flex-direction:column;overflow:hidden;z-index:2147483000}",
    ".right{right:20px}.left{left:20px}",
    "[hidden]{display:none!important}",
    "header{background:var(--c);color:#fff;padding:12px 14px;display:flex;align-items:center;gap:8px}",
    "header h2{font-size:16px;margin:0;flex:1}header p{margin:2px 0 0;font-size:12px;opacity:.9}",
    ".x{background:transparent;border:0;color:#fff;font-size:22px;cursor:pointer;width:32px;height:32px}",
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px;background:#f6f7f9}",
    ".intro{color:#555;font-size:13px;text-align:center;margin:4px 8px}",
    ".msg{max-width:82%;padding:8px 11px;border-radius:12px;font-size:14px;line-height:1.4;white-space:pre-wrap;overflow-wrap:anywhere;background:#fff;border:1px solid #e3e5e8}",
    ".msg.customer{align-self:flex-end;background:var(--c);color:#fff;border:0}",
    ".who{font-size:11px;font-weight:600;opacity:.75;margin-bottom:2px}",
    ".meta{font-size:11px;opacity:.7;margin-top:3px;text-align:right}",
    ".failed .meta{opacity:1;text-decoration:underline;cursor:pointer}",
    ".deleted{font-style:italic;opacity:.6}",
    ".files{display:flex;flex-direction:column;gap:4px;margin-top:4px}",
    ".files img{max-width:100%;border-radius:8px;display:block}",
    ".file{background:rgba(0,0,0,.08);border:0;border-radius:8px;padding:5px 8px;font-size:13px;text-align:left;cursor:pointer;color:inherit}",
    ".choices{display:flex;flex-wrap:wrap;gap:6px}",
    ".choice{border:1px solid var(--c);color:var(--c);background:#fff;border-radius:16px;padding:6px 12px;font-size:13px;cursor:pointer}",
    ".note{font-size:12px;color:#555;text-align:center}",
    ".contact{border-top:1px solid #e3e5e8;padding:10px 12px;display:flex;flex-direction:column;gap:6px;font-size:13px;background:#fff}",
    ".contact input{border:1px solid #c9ccd1;border-radius:8px;padding:7px 9px;font-size:14px}",
    ".row{display:flex;gap:6px;justify-content:flex-end}",
    ".row button,.send{background:var(--c);color:#fff;border:0;border-radius:8px;padding:8px 12px;font-size:14px;cursor:pointer}",
    ".row .plain{background:transparent;color:#333}",
    ".composer{display:flex;align-items:flex-end;gap:6px;padding:8px;border-top:1px solid #e3e5e8;background:#fff}",
    ".composer textarea{flex:1;resize:none;border:1px solid #c9ccd1;border-radius:10px;padding:8px 10px;font-size:14px;max-height:120px;min-height:38px}",
    ".attach{background:transparent;border:0;font-size:20px;cursor:pointer;width:36px;height:38px;color:#555}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
    "@media (max-width:480px){.panel{inset:0;width:100vw;max-width:100vw;height:100%;max-height:100%;border-radius:0;bottom:0}.right,.left{right:0;left:0}}",
  ].join("\n");

  // icons as SVG paths (24 x 24): no emoji font needed, the same everywhere
  var CHAT_ICON = "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z";
  var CLIP_ICON = "M16.5 6.5l-7.8 7.8a2 2 0 0 0 2.8 2.8l7.8-7.8a4 4 0 0 0-5.7-5.7L5.8 11.4a6 6 0 0 0 8.5 8.5l6.2-6.2";
  function icon(path, size) {
    var ns = "http://www.w3.org/2000/svg", svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24"); svg.setAttribute("width", size); svg.setAttribute("height", size);
    svg.setAttribute("aria-hidden", "true"); svg.setAttribute("fill", "none");
    svg.setAttribute("stroke", "currentColor"); svg.setAttribute("stroke-width", "2");
    svg.setAttribute("stroke-linecap", "round"); svg.setAttribute("stroke-linejoin", "round");
    var shape = document.createElementNS(ns, "path");
    shape.setAttribute("d", path);
    svg.appendChild(shape);
    return svg;
  }

  function build() {
    var host = el("div", { id: "support-chat" });
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
    root.appendChild(el("style", {}, CSS));
    ui.launcher = el("button", { class: "launcher", type: "button", "aria-expanded": "false", "aria-controls": "sc-panel" });
    ui.launcher.appendChild(icon(CHAT_ICON, 26));
    ui.badge = el("span", { class: "badge", hidden: "" });
    ui.launcher.appendChild(ui.badge);
    ui.panel = el("section", { class: "panel", id: "sc-panel", role: "dialog", hidden: "" });
    var header = el("header");
    var heading = el("div", { style: "flex:1" });
    ui.title = el("h2", { id: "sc-title" });
    ui.status = el("p", { "aria-live": "polite" });
    heading.appendChild(ui.title); heading.appendChild(ui.status);
    ui.close = el("button", { class: "x", type: "button" }, "×");
    header.appendChild(heading); header.appendChild(ui.close);
    ui.log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions" });
    ui.intro = el("p", { class: "intro" });
    ui.log.appendChild(ui.intro);
    ui.contact = el("form", { class: "contact", hidden: "", novalidate: "" });
    ui.contactText = el("p", { style: "margin:0" });
    ui.name = el("input", { type: "text", autocomplete: "name", maxlength: "80" });
    ui.email = el("input", { type: "email", autocomplete: "email", maxlength: "254" });
    var row = el("div", { class: "row" });
    ui.skip = el("button", { type: "button", class: "plain" });
    ui.save = el("button", { type: "submit" });
    row.appendChild(ui.skip); row.appendChild(ui.save);
    [ui.contactText, ui.name, ui.email, row].forEach(function (n) { ui.contact.appendChild(n); });
    var composer = el("form", { class: "composer" });
    ui.label = el("label", { class: "sr", for: "sc-input" });
    ui.input = el("textarea", { id: "sc-input", rows: "1" });
    ui.attach = el("button", { class: "attach", type: "button" });
    ui.attach.appendChild(icon(CLIP_ICON, 20));
    ui.file = el("input", { type: "file", hidden: "" });
    ui.send = el("button", { class: "send", type: "submit" });
    [ui.label, ui.attach, ui.file, ui.input, ui.send].forEach(function (n) { composer.appendChild(n); });
    [header, ui.log, ui.contact, composer].forEach(function (n) { ui.panel.appendChild(n); });
    root.appendChild(ui.launcher); root.appendChild(ui.panel);
    document.body.appendChild(host);

    ui.launcher.addEventListener("click", function () { ui.panel.hidden ? open() : close(); });
    ui.close.addEventListener("click", close);
    ui.panel.addEventListener("keydown", function (event) { if (event.key === "Escape") close(); });
    composer.addEventListener("submit", function (event) { event.preventDefault(); submit(); });
    ui.input.addEventListener("input", typing);
    ui.input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); submit(); }
    });
    ui.attach.addEventListener("click", function () { ui.file.click(); });
    ui.file.addEventListener("change", function () { if (ui.file.files[0]) attach(ui.file.files[0]); ui.file.value = ""; });
    ui.contact.addEventListener("submit", function (event) { event.preventDefault(); leaveContact(); });
    ui.skip.addEventListener("click", function () { saved.contact = "skipped"; store(); ui.contact.hidden = true; });
  }

  function dress() {
    var s = session, l = s.labels;
    [ui.launcher, ui.panel].forEach(function (n) { n.style.setProperty("--c", s.look.colour); n.classList.add(s.look.position); });
    ui.launcher.setAttribute("aria-label", l.open);
    ui.panel.setAttribute("aria-label", s.look.title);
    ui.title.textContent = s.look.title;
    ui.close.setAttribute("aria-label", l.close);
    ui.intro.textContent = s.texts.intro;
    ui.label.textContent = l.input;
    ui.input.setAttribute("placeholder", l.placeholder);
    ui.input.setAttribute("maxlength", String(s.limits.text));
    ui.attach.setAttribute("aria-label", l.attach);
    ui.attach.setAttribute("title", l.attach);
    ui.file.setAttribute("accept", s.limits.types.join(","));
    ui.send.textContent = l.send;
    ui.contactText.textContent = s.texts.contact;
    ui.name.setAttribute("aria-label", l.name); ui.name.setAttribute("placeholder", l.name);
    ui.email.setAttribute("aria-label", l.email); ui.email.setAttribute("placeholder", l.email);
    ui.save.textContent = l.save; ui.skip.textContent = l.skip;
    if (s.visitor.name) ui.name.value = s.visitor.name;
    if (s.visitor.email) ui.email.value = s.visitor.email;
    showDesk(s.desk);
  }

  function showDesk(desk) {
    var l = session.labels;
    ui.status.textContent = desk.note || (desk.free ? l.online : l.away);
  }

  function open() {
    ui.panel.hidden = false;
    ui.launcher.setAttribute("aria-expanded", "true");
    unread = 0; badge();
    ui.input.focus();
    ui.log.scrollTop = ui.log.scrollHeight;
  }
  function close() {
    ui.panel.hidden = true;
    ui.launcher.setAttribute("aria-expanded", "false");
    ui.launcher.focus();
  }
  function badge() {
    ui.badge.hidden = !unread;
    ui.badge.textContent = String(unread);
    if (session) ui.badge.setAttribute("aria-label", unread + " " + session.labels.new);
  }

  // -- the transcript ------------------------------------------------------------

  function upsert(frame) {
    var known = messages[frame.id];
    if (frame.cid) dropPending(frame.cid);
    if (!known) {
      order.push(frame.id);
      order.sort(function (a, b) { return a - b; });
      if (loaded && frame.side !== "customer" && ui.panel.hidden) { unread += 1; badge(); }
    }
    messages[frame.id] = frame;
    if (frame.side !== "customer" && frame.choices && frame.choices.length) choices = frame;
    if (frame.id > (saved.after || 0)) { saved.after = frame.id; store(); }
    render();
  }

  function dropPending(id) {
    saved.pending = (saved.pending || []).filter(function (p) { return p.cid !== id; });
    store();
  }

  // the log is reconciled, not redrawn: a node per message, replaced only when what
  // it shows changed, so a screen reader announces additions and nothing twice
  var nodes = {};
  function render() {
    var l = session ? session.labels : {};
    var log = ui.log, atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    var lastReply = 0, items = [];
    order.forEach(function (id) { if (messages[id].side === "operator") lastReply = id; });
    order.forEach(function (id) {
      var m = messages[id];
      if (!m.text && !(m.files || []).length && !m.deleted) return;
      var state = m.side === "customer" ? (id < lastReply ? l.seen : l.sent) : null;
      items.push(["m" + id, JSON.stringify([m.text, m.files, m.deleted, m.author, state]), function () { return bubble(m, state); }]);
    });
    var pending = saved.pending || [];
    pending.forEach(function (p) {
      var state = p.failed ? l.failed : l.sending;
      items.push(["p" + p.cid, state, function () { return bubble({ side: "customer", text: p.text, files: p.files || [], pending: p }, state); }]);
    });
    var last = order.length ? messages[order[order.length - 1]] : null;
    if (choices && last === choices && !pending.length) {
      items.push(["choices", choices.id + JSON.stringify(choices.choices), function () {
        var row = el("div", { class: "choices" });
        choices.choices.forEach(function (choice) {
          var button = el("button", { class: "choice", type: "button" }, choice[1]);
          button.addEventListener("click", function () { say(choice[0], []); });
          row.appendChild(button);
        });
        return row;
      }]);
    }
    if (notice) items.push(["notice", notice, function () { return el("p", { class: "note" }, notice); }]);
    var seen = {}, at = ui.intro;
    items.forEach(function (item) {
      var have = nodes[item[0]];
      if (!have || have.sig !== item[1]) {
        var fresh = item[2]();
        if (have && have.el.parentNode) have.el.replaceWith(fresh);
        have = nodes[item[0]] = { sig: item[1], el: fresh };
      }
      seen[item[0]] = true;
      if (at.nextSibling !== have.el) log.insertBefore(have.el, at.nextSibling);
      at = have.el;
    });
    for (var key in nodes) if (!seen[key]) { nodes[key].el.remove(); delete nodes[key]; }
    if (atEnd || !loaded) log.scrollTop = log.scrollHeight;
  }

  function clearLog() {
    for (var key in nodes) nodes[key].el.remove();
    nodes = {};
  }

  function bubble(m, state) {
    var l = session ? session.labels : {};
    var node = el("div", { class: "msg " + m.side + (m.deleted ? " deleted" : "") + (m.pending && m.pending.failed ? " failed" : "") });
    if (m.side !== "customer") node.appendChild(el("div", { class: "who" }, m.side === "operator" ? (m.author || session.look.title) : session.look.title));
    if (m.text) node.appendChild(el("div", { class: "text" }, m.text));
    if ((m.files || []).length) {
      var files = el("div", { class: "files" });
      m.files.forEach(function (f) { files.appendChild(fileNode(m, f)); });
      node.appendChild(files);
    }
    if (state) {
      var meta = el("div", { class: "meta" }, state);
      if (m.pending && m.pending.failed) meta.addEventListener("click", function () { m.pending.failed = false; store(); flush(); render(); });
      node.appendChild(meta);
    }
    return node;
  }

  function fileNode(m, f) {
    if (!m.id) return el("span", { class: "file" }, f.name);
    var button = el("button", { class: "file", type: "button", "aria-label": (session.labels.download || "") + " " + f.name }, "↓ " + f.name);
    button.addEventListener("click", function () {
      fetchFile(m.id, f.n).then(function (url) {
        var a = el("a", { href: url, download: f.name }); a.click();
      });
    });
    if (!f.image) return button;
    var holder = el("div");
    var img = el("img", { alt: f.name });
    holder.appendChild(img);
    fetchFile(m.id, f.n).then(function (url) { img.src = url; }, function () { holder.replaceWith(button); });
    return holder;
  }

  var blobs = {};
  function fetchFile(id, n) {
    var key = id + ":" + n;
    if (!blobs[key]) {
      blobs[key] = fetch(BASE + "/web/file", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token: saved.token, id: id, n: n }),
      }).then(function (r) { if (!r.ok) throw r; return r.blob(); }).then(function (b) { return URL.createObjectURL(b); });
    }
    return blobs[key];
  }

  // -- sending -------------------------------------------------------------------

  // the operators see "typing…" while the visitor types (every few seconds at most)
  var typedAt = 0;
  function typing() {
    var now = Date.now();
    if (now - typedAt < 4000 || !saved.token || !ui.input.value.trim()) return;
    typedAt = now;
    if (socket && socket.ready) socket.send(JSON.stringify({ t: "typing" }));
    else if (mode === "poll") post("typing", { token: saved.token }).catch(function () {});
  }

  function submit() {
    var text = ui.input.value.trim();
    if (!text) return;
    ui.input.value = "";
    say(text, []);
  }

  function say(text, files) {
    typedAt = 0; // the next message's typing shows at once
    var item = { cid: cid(), text: text, files: files };
    saved.pending = (saved.pending || []).concat([item]);
    store();
    render();
    deliver(item);
  }

  function deliver(item) {
    var frame = { t: "send", cid: item.cid, text: item.text, files: (item.files || []).map(function (f) { return f.key; }) };
    if (socket && socket.readyState === 1 && socket.ready) { socket.send(JSON.stringify(frame)); return; }
    if (mode !== "poll") return; // sent once the socket is back (welcome)
    frame.token = saved.token;
    post("send", frame).then(handle, function (error) { handle(Object.assign({ t: "error", cid: item.cid }, error)); });
  }

  function flush() {
    (saved.pending || []).forEach(function (item) { if (!item.failed) deliver(item); });
  }

  function attach(file) {
    var limits = session.limits, l = session.labels;
    if (file.size > limits.file_bytes) return note(l.failed + " (" + Math.round(limits.file_bytes / 1048576) + " MB)");
    var form = new FormData();
    form.append("token", saved.token);
    form.append("file", file, file.name);
    fetch(BASE + "/web/upload", { method: "POST", body: form })
      .then(function (r) { return r.json().then(function (a) { if (!r.ok) throw a; return a; }); })
      .then(function (f) { var text = ui.input.value.trim(); ui.input.value = ""; say(text, [f]); },
            function (e) { note((e && e.message) || l.failed); });
  }

  function leaveContact() {
    var body = { t: "contact", name: ui.name.value.trim() || null, email: ui.email.value.trim() || null };
    if (!body.email) { ui.email.focus(); return; }
    var sent = socket && socket.ready ? (socket.send(JSON.stringify(body)), Promise.resolve(null))
      : post("contact", Object.assign({ token: saved.token }, body)).then(handle);
    sent.catch(function (e) { note((e && e.message) || session.labels.failed); });
  }

  function note(text) {
    notice = text; render();
  }

  function maybeAsk() {
    var ask = session.ask_contact;
    if (askedNow || saved.contact || session.visitor.email || ask === "never") return;
    if (ask === "busy" && session.desk.free) return;
    askedNow = true;
    ui.contact.hidden = false;
  }

  // -- what comes in --------------------------------------------------------------

  function handle(frame) {
    if (!frame || !frame.t) return;
    if (frame.t === "msg") upsert(frame);
    else if (frame.t === "ack") { dropPending(frame.cid); maybeAsk(); render(); }
    else if (frame.t === "welcome") {
      saved.since = frame.now; store(); loaded = true; retry = 0; failedOpens = 0;
      showDesk(session.desk);
      flush(); render();
    } else if (frame.t === "contact") {
      saved.contact = "done"; store();
      session.visitor.email = frame.email;
      ui.contact.hidden = true;
      note((session.texts.contact_thanks || "").replace("{email}", frame.email || ""));
    } else if (frame.t === "error") failed(frame);
  }

  function failed(frame) {
    if (frame.code === "token") { restart(); return; }
    var item = (saved.pending || []).filter(function (p) { return p.cid === frame.cid; })[0];
    if (!item) { if (frame.message) note(frame.message); return; }
    if (frame.retry_after || frame.code === "busy" || !frame.code) {
      setTimeout(function () { deliver(item); }, 1000 * (frame.retry_after || 2));
      return;
    }
    item.failed = true; item.reason = frame.message; store(); render();
  }

  // -- the connection -------------------------------------------------------------

  function connect() {
    if (stopped) return;
    if (mode === "poll" || !window.WebSocket) { mode = "poll"; poll(); return; }
    var opened = false;
    var ws = new WebSocket(BASE.replace(/^http/, "ws") + "/web/socket");
    socket = ws;
    ws.onopen = function () {
      opened = true;
      ws.send(JSON.stringify({ t: "hello", token: saved.token, after: saved.after || 0, since: saved.since || null }));
    };
    ws.onmessage = function (event) {
      var frame; try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame.t === "welcome") ws.ready = true;
      handle(frame);
    };
    ws.onclose = function (event) {
      if (socket === ws) socket = null;
      if (event.code === 4401) { restart(); return; }
      if (!opened && ++failedOpens >= 2) mode = "poll";
      ui.status.textContent = session.labels.offline;
      again();
    };
  }

  function poll() {
    if (polling || stopped) return;
    polling = true;
    post("poll", { token: saved.token, after: saved.after || 0, since: saved.since || null, wait: loaded })
      .then(function (answer) {
        polling = false;
        answer.frames.forEach(handle);
        if (!loaded) handle({ t: "welcome", now: answer.now }); else { saved.since = answer.now; store(); }
        retry = 0;
        poll();
      }, function (error) {
        polling = false;
        if (error && error.status === 401) { restart(); return; }
        ui.status.textContent = session.labels.offline;
        again();
      });
  }

  function again() {
    clearTimeout(timer);
    var wait = Math.min(15000, 500 * Math.pow(2, retry++)) * (0.7 + Math.random() * 0.6);
    timer = setTimeout(connect, wait);
  }

  function restart() {
    saved = { pending: saved.pending };
    store();
    messages = {}; order = []; loaded = false; clearLog();
    if (socket) { var s = socket; socket = null; s.onclose = null; s.close(); }
    begin();
  }

  function begin() {
    var token = saved.token;
    if (token && /^u-/.test(token) && !data.user) token = null; // signed out: a fresh chat
    post("session", { token: token || null, user: data.user || null, user_hash: data.userHash || null, name: data.name || null, language: data.language || navigator.language })
      .then(function (answer) {
        if (answer.token !== saved.token) { saved = { token: answer.token, pending: saved.pending || [] }; messages = {}; order = []; clearLog(); }
        store();
        session = answer;
        dress(); render(); connect();
      }, function (error) {
        if (error && (error.status === 403 || error.status === 400)) { ui.launcher.hidden = true; return; }
        setTimeout(begin, Math.min(30000, 1000 * Math.pow(2, retry++)));
      });
  }

  function init() {
    build();
    window.SupportChat = { open: open, close: close, state: function () { return { mode: mode, loaded: loaded, messages: order.length, pending: (saved.pending || []).length }; } };
    begin();
    if (data.open === "true") open();
  }
  if (document.body) init(); else document.addEventListener("DOMContentLoaded", init);
})();
