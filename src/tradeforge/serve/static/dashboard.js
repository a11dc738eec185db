/* tradeforge dashboard: keeps a server-rendered page live from the /events stream.
   On a new snapshot it re-fetches the HTML of every [data-fragment] region from
   /ui/fragments/<name> and redraws the equity chart; a heartbeat badge shows the stream's health. */
(function () {
  "use strict";
  var body = document.body;
  var beat = document.querySelector("[data-testid=heartbeat]");
  if (!beat || typeof window.EventSource === "undefined") { return; }
  var lastEvent = 0;
  var beats = 0;
  var connected = false;
  var busy = false;
  var again = false;

  function drawChart(figure) {
    var node = document.getElementById("equity-chart");
    if (!node || !window.Plotly || !figure) { return; }
    window.Plotly.react(node, figure.data, figure.layout, figure.config);
  }

  function get(url, accept) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": accept } }).then(function (r) {
      if (r.status === 401) { window.location.reload(); throw new Error("session ended"); }
      if (!r.ok) { throw new Error(url + " answered " + r.status); }
      return accept === "application/json" ? r.json() : r.text();
    });
  }

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    var jobs = Array.prototype.map.call(document.querySelectorAll("[data-fragment]"), function (node) {
      return get("/ui/fragments/" + encodeURIComponent(node.getAttribute("data-fragment")), "text/html")
        .then(function (html) { node.innerHTML = html; });
    });
    if (document.getElementById("equity-chart")) {
      jobs.push(get("/ui/chart/equity", "application/json").then(drawChart));
    }
    Promise.all(jobs).catch(function (err) { console.warn("dashboard refresh failed:", err); })
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  function showControls(snap) {
    var halted = snap.killed || snap.trading_state === "halted";
    var kill = document.querySelector("[data-testid=kill-form]");
    var resume = document.querySelector("[data-testid=resume-form]");
    if (kill) { kill.hidden = !!snap.killed; }
    if (resume) { resume.hidden = !halted; }
  }

  function onEvent() {
    lastEvent = Date.now();
    beats += 1;
    beat.setAttribute("data-beats", String(beats));
    paintBeat();
  }

  function paintBeat() {
    var age = (Date.now() - lastEvent) / 1000;
    var cls = !connected ? "hb-down" : (age > 12 ? "hb-stale" : "hb-ok");
    beat.className = "heartbeat " + cls;
    beat.textContent = !connected ? "reconnecting…" : "live · " + Math.round(age) + " s ago";
  }

  var initial = document.getElementById("equity-figure");
  if (initial) {
    try { drawChart(JSON.parse(initial.textContent)); } catch (err) { console.warn("equity chart:", err); }
  }

  var source = new EventSource("/events");
  source.addEventListener("open", function () { connected = true; paintBeat(); });
  source.addEventListener("error", function () {
    connected = false;
    paintBeat();
    if (source.readyState === EventSource.CLOSED) {  /* e.g. the session expired: show the login */
      window.setTimeout(function () { window.location.reload(); }, 3000);
    }
  });
  source.addEventListener("heartbeat", onEvent);
  source.addEventListener("snapshot", function (e) {
    onEvent();
    var snap = JSON.parse(e.data);
    if (snap.version === body.getAttribute("data-version")) { return; }
    body.setAttribute("data-version", snap.version);
    showControls(snap);
    refresh();
  });
  window.setInterval(paintBeat, 1000);
  window.addEventListener("pagehide", function () { source.close(); });
}());
