// ccd dashboard: what htmx does not. A workflow page follows the workflow's event
// stream and repaints what changed (table, graph, summary) at most 4 times a second;
// its log pane follows a job's log; the buttons confirm, then call the API. Every
// request that changes something sends the CSRF header the daemon asks for.
(function () {
  "use strict";

  const CSRF = document.querySelector('meta[name="ccd-csrf"]').content;
  const PAINT_EVERY = 250; // ms: at most 4 repaints a second, however busy the stream
  const WAITING = new Set(["pending", "queued"]);
  const MARKER = /^\s*(::ccd\s|# cloudmesh\s)/;
  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;

  document.addEventListener("htmx:configRequest", (e) => { e.detail.headers["X-CCD-CSRF"] = CSRF; });

  function api(method, url, body, type) {
    const headers = { "X-CCD-CSRF": CSRF };
    if (type) headers["Content-Type"] = type;
    return fetch(url, { method, headers, body, credentials: "same-origin" });
  }

  async function errorText(resp) {
    try { return (await resp.json()).error || resp.statusText; } catch (_) { return resp.statusText; }
  }

  function flash(text, error) {
    const div = document.createElement("div");
    div.className = error ? "msg error" : "msg";
    div.textContent = text;
    $("flash").appendChild(div);
    setTimeout(() => div.remove(), error ? 10000 : 4000);
  }

  // a <dialog>, not window.confirm: it can be styled, read and answered like the page
  function confirmAction(text) {
    const dialog = $("confirm");
    $("confirm-text").textContent = text;
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.returnValue = "";
      dialog.showModal();
    });
  }

  function clock(stamp) {
    return stamp == null ? null : new Date(stamp * 1000).toLocaleString();
  }

  function duration(seconds) {
    if (seconds == null) return "";
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
    return m ? `${m}m ${String(r).padStart(2, "0")}s` : `${r}s`;
  }

  // -- upload ------------------------------------------------------------------------
  function setupUpload(form) {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const file = $("upload-file").files[0];
      const out = $("upload-result");
      out.textContent = "";
      if (!file) { out.textContent = "Choose a workflow file first."; return; }
      const resp = await api("POST", "/v1/workflows", await file.text(), "application/yaml");
      if (resp.ok) {
        const done = await resp.json();
        window.location.assign(`/w/${enc(done.id)}`);
        return;
      }
      const body = await resp.json().catch(() => ({}));
      const pre = document.createElement("pre");
      pre.className = "problems";
      const problems = (body.problems || []).map(
        (p) => `${file.name}:${p.line}:${p.column}: ${p.message} [${p.code}]`);
      pre.textContent = `${file.name} was not submitted: ` +
        (problems.length ? "\n" + problems.join("\n") : body.error || resp.statusText);
      out.appendChild(pre);
    });
  }

  // -- one workflow ------------------------------------------------------------------
  let FINAL = new Set(); // the final job states, as the page says (ccd/states.py)

  function WorkflowPage(initial) {
    FINAL = new Set(initial.final);
    const wf = { id: initial.id, state: initial.state, seq: initial.seq, ended: initial.ended };
    const FINAL_WORKFLOW = new Set(initial.final_workflow);
    const jobs = new Map(initial.jobs.map((j) => [j.name, j]));
    const rows = new Map();
    document.querySelectorAll("#jobs tbody tr[data-job]").forEach((tr) => rows.set(tr.dataset.job, tr));
    let nodes = new Map();
    // the server drew the table as of `seq`: only what changes after needs painting
    const dirty = new Set();
    let timer = null, lastPaint = 0, headDirty = true, selected = null;

    function schedule() {
      if (timer) return;
      timer = setTimeout(paint, Math.max(0, lastPaint + PAINT_EVERY - Date.now()));
    }

    function paint() {
      timer = null;
      lastPaint = Date.now();
      // when the page repainted, for bench/ui.py (the last 1,000 times only)
      const times = (window.ccdPaintTimes = window.ccdPaintTimes || []);
      times.push(performance.now());
      if (times.length > 1000) times.splice(0, times.length - 1000);
      const now = Date.now() / 1000;
      for (const name of dirty) {
        paintJob(jobs.get(name), now);
        if (groupOf.has(name)) groupsDirty.add(groupOf.get(name));
      }
      dirty.clear();
      for (const title of groupsDirty) paintGroup(title);
      groupsDirty.clear();
      if (headDirty) paintHead();
      headDirty = false;
    }

    function elapsed(j, now) {
      if (j.started == null) return null;
      return (j.ended != null ? j.ended : now) - j.started;
    }

    function paintJob(j, now) {
      if (!j) return;
      const tr = rows.get(j.name);
      const pct = j.progress == null ? "" : `${Math.floor(j.progress)}%`;
      if (tr) {
        tr.className = `state-${j.state}` + (j.name === selected ? " selected" : "");
        const st = tr.querySelector(".c-state span");
        st.className = `state s-${j.state}`;
        st.textContent = j.state;
        tr.querySelector(".c-progress .bar span").style.width = `${j.progress || 0}%`;
        tr.querySelector(".c-progress .pct").textContent = pct;
        tr.querySelector(".c-attempt").textContent = j.attempt;
        tr.querySelector(".c-host").textContent = j.host;
        tr.querySelector(".c-elapsed").textContent = duration(elapsed(j, now));
        tr.querySelector(".c-exit").textContent = j.exit_code == null ? "" : j.exit_code;
        tr.querySelector(".c-message").textContent = j.message || j.reason || "";
      }
      const node = nodes.get(j.name);
      if (node) {
        node.shape.setAttribute("fill", initial.colours[j.state] || "#9e9e9e");
        node.g.dataset.state = j.state;
        if (node.status) node.status.textContent = `${j.state} ${pct}`.trim();
      }
    }

    function paintHead() {
      const counts = {};
      let done = 0;
      for (const j of jobs.values()) {
        counts[j.state] = (counts[j.state] || 0) + 1;
        if (FINAL.has(j.state)) done += 1;
      }
      $("wf-duration").textContent = duration((wf.ended ?? Date.now() / 1000) - initial.created);
      const st = $("wf-state");
      st.textContent = wf.state;
      st.className = `state s-${wf.state}`;
      const bar = $("wf-bar");
      bar.textContent = "";
      for (const state of initial.done_order) {
        if (!counts[state]) continue;
        const piece = document.createElement("span");
        piece.className = `s-${state}`;
        piece.style.width = `${(100 * counts[state]) / jobs.size}%`;
        bar.appendChild(piece);
      }
      $("wf-done").textContent = `${done}/${jobs.size} done`;
      const parts = initial.order.filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`).join(", ");
      $("wf-counts").textContent = parts;
      // the graph's own title is the summary line `ccctl graph` writes: keep it true
      const label = document.querySelector("#graph svg g.graph > text");
      if (label) label.textContent = `${initial.name} (${wf.id}) ${wf.state} — ${parts}`;
      const running = wf.state === "running";
      $("cancel-workflow").disabled = !running;
      $("retry-workflow").disabled = running;
      const sel = selected && jobs.get(selected);
      $("cancel-job").disabled = !sel || FINAL.has(sel.state);
    }

    // what fold.py does to a row, for the fields the page shows
    function apply(ev) {
      const d = ev.data || {};
      if (ev.kind === "workflow.state") {
        wf.state = d.state;
        wf.ended = FINAL_WORKFLOW.has(d.state) ? ev.time : null;
        headDirty = true;
        return;
      }
      if (ev.kind === "workflow.jobs_added") { jobsAdded(); return; }
      const j = ev.job && jobs.get(ev.job);
      if (!j) { if (ev.job) jobsAdded(); return; }
      if (ev.kind === "job.state") applyState(j, d, ev.time);
      else if (ev.kind === "job.progress") {
        if (d.progress != null) j.progress = d.progress;
        if ("message" in d) j.message = d.message;
      } else return;
      dirty.add(j.name);
      headDirty = true;
    }

    function applyState(j, d, time) {
      const final = FINAL.has(d.state);
      if (WAITING.has(d.state) && !WAITING.has(j.state)) j.progress = j.message = j.started = null;
      else if (d.state === "running" && j.state !== "unreachable") j.started = time;
      if ("exit_code" in d) j.exit_code = d.exit_code;
      else if (!final) j.exit_code = null;
      if ("attempt" in d) j.attempt = d.attempt;
      j.reason = d.reason == null ? null : d.reason;
      j.ended = final ? (d.ended != null ? Math.min(d.ended, time) : time) : null;
      const wasRunning = j.state === "running";
      j.state = d.state;
      if (j.name === selected && d.state === "running" && !wasRunning) log.open(j.name);
      if (j.name === selected) detail(j.name);
    }

    // a foreach fanned out: the table and the graph were drawn without its jobs
    function jobsAdded() {
      const note = $("jobs-added");
      if (note) note.hidden = false;
    }
    $("jobs-added-reload").addEventListener("click", () => window.location.reload());

    // whether the page is following: a user must know when what it shows is stale
    function live(text, ok) {
      const badge = $("live");
      badge.textContent = text;
      badge.className = ok ? "live ok" : "live";
    }

    async function follow() {
      for (let pause = 500; ; pause = Math.min(pause * 2, 8000)) {
        try {
          const resp = await fetch(`/v1/workflows/${enc(wf.id)}/events?follow=true&since=${wf.seq}`);
          if (resp.ok) {
            pause = 250;
            live("live", true);
            await readLines(resp.body, (line) => {
              if (!line.trim()) return; // keep-alive
              const ev = JSON.parse(line);
              wf.seq = Math.max(wf.seq, ev.seq);
              apply(ev);
            }, schedule);
          } else {
            live(`not following: ${await errorText(resp)}`, false);
          }
        } catch (err) { /* the daemon restarted or the network dropped: try again */ }
        schedule();
        // the stream ends with the workflow; a retry makes it run again (see below)
        if (wf.state !== "running") { live("", true); return; }
        if ($("live").className === "live ok") live("reconnecting…", false);
        await new Promise((r) => setTimeout(r, pause));
      }
    }

    // a running job's elapsed time goes on without events
    setInterval(() => {
      for (const j of jobs.values()) if (j.state === "running") dirty.add(j.name);
      if (wf.state === "running") headDirty = true; // its duration goes on too
      if (dirty.size || headDirty) schedule();
    }, 1000);

    // -- graph ------------------------------------------------------------------------
    // A big array, foreach or fan-out is one node (ccd/web/collapse.py); the graph's
    // fragment names its members, which give it its colour and counts; a click draws
    // them one by one.
    const expanded = new Set();
    let groups = new Map(); // folded node's title -> its node and its members' names
    const groupOf = new Map(); // a member's name -> its folded node's title
    const groupsDirty = new Set();
    let around = null;

    function drawGraph() {
      const query = new URLSearchParams();
      if (around) query.set("around", around);
      for (const title of expanded) query.append("expand", title);
      $("graph-all").hidden = !around;
      htmx.ajax("GET", `/ui/w/${enc(wf.id)}/graph?${query}`, { target: "#graph", swap: "innerHTML" });
    }

    function indexGraph() {
      nodes = new Map();
      groups = new Map();
      groupOf.clear();
      const wrap = document.querySelector("#graph .graph-wrap");
      const members = wrap ? JSON.parse(wrap.dataset.groups) : {};
      document.querySelectorAll("#graph g.node").forEach((g) => {
        const title = g.querySelector("title");
        const texts = g.querySelectorAll("text");
        const shape = g.querySelector("path, polygon, ellipse");
        if (!title || !shape) return;
        const name = title.textContent, node = { g, shape, status: texts[1] || null };
        if (members[name]) {
          groups.set(name, { ...node, members: members[name] });
          for (const member of members[name]) groupOf.set(member, name);
          g.addEventListener("click", () => { expanded.add(name); drawGraph(); });
          return;
        }
        nodes.set(name, node);
        g.addEventListener("click", () => select(name));
      });
      for (const name of nodes.keys()) dirty.add(name);
      for (const title of groups.keys()) groupsDirty.add(title);
      schedule();
    }

    function paintGroup(title) {
      const node = groups.get(title);
      if (!node) return;
      const counts = {};
      for (const name of node.members) {
        const state = jobs.has(name) ? jobs.get(name).state : "unknown";
        counts[state] = (counts[state] || 0) + 1;
      }
      const order = initial.group_order;
      const state = order.find((s) => counts[s]) || "unknown";
      node.shape.setAttribute("fill", initial.colours[state] || "#9e9e9e");
      node.g.dataset.state = state;
      if (node.status) node.status.textContent = order.filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`).join(", ");
    }

    document.body.addEventListener("htmx:afterSwap", (e) => { if (e.target.id === "graph") indexGraph(); });
    $("graph-all").addEventListener("click", () => { around = null; drawGraph(); });
    $("around-job").addEventListener("click", () => {
      if (!selected) return;
      around = selected;
      drawGraph();
    });

    // -- table: select, sort, filter ----------------------------------------------------
    function select(name) {
      if (selected && rows.get(selected)) rows.get(selected).classList.remove("selected");
      if (selected && nodes.get(selected)) nodes.get(selected).g.classList.remove("selected");
      selected = name;
      if (rows.get(name)) rows.get(name).classList.add("selected");
      if (nodes.get(name)) nodes.get(name).g.classList.add("selected");
      $("log-job").textContent = `— ${name}`;
      $("around-job").disabled = false;
      headDirty = true;
      schedule();
      log.open(name);
      detail(name);
    }

    // the picked job as `ccctl status WF JOB` shows it, and which attempt's log to show
    const DETAIL = [
      ["state", (r) => r.state], ["attempt", (r) => r.attempt], ["host", (r) => `${r.host} (${r.executor})`],
      ["exit code", (r) => r.exit_code], ["reason", (r) => r.reason],
      ["started", (r) => clock(r.started)], ["ended", (r) => clock(r.ended)],
      ["workdir", (r) => r.workdir], ["run directory", (r) => r.run_dir], ["log file", (r) => r.log],
      ["outputs", (r) => (Object.keys(r.outputs || {}).length ? JSON.stringify(r.outputs) : null)],
    ];
    async function detail(name) {
      const resp = await fetch(`/v1/workflows/${enc(wf.id)}/jobs/${enc(name)}`);
      if (!resp.ok || name !== selected) return;
      const r = await resp.json();
      const dl = $("job-detail");
      dl.textContent = "";
      for (const [label, value] of DETAIL) {
        const v = value(r);
        if (v == null || v === "") continue;
        const dt = document.createElement("dt"), dd = document.createElement("dd");
        dt.textContent = label;
        dd.textContent = v;
        dl.append(dt, dd);
      }
      const pick = $("log-attempt");
      pick.textContent = "";
      for (let n = r.attempt; n >= 1; n--) pick.add(new Option(`attempt ${n}`, String(n)));
      pick.hidden = r.attempt < 2;
    }
    $("log-attempt").addEventListener("change", (e) => { if (selected) log.open(selected, e.target.value); });
    rows.forEach((tr, name) => tr.addEventListener("click", () => select(name)));

    const SORT_VALUE = {
      elapsed: (j) => elapsed(j, Date.now() / 1000) ?? -1,
      progress: (j) => j.progress ?? -1,
      exit_code: (j) => j.exit_code ?? -1,
      message: (j) => j.message || j.reason || "",
    };
    let sortKey = null, sortDir = 1;
    document.querySelectorAll("#jobs th[data-key]").forEach((th) => th.addEventListener("click", () => {
      const key = th.dataset.key;
      sortDir = sortKey === key ? -sortDir : 1;
      sortKey = key;
      document.querySelectorAll("#jobs th").forEach((h) => h.classList.remove("sorted-asc", "sorted-desc"));
      th.classList.add(sortDir > 0 ? "sorted-asc" : "sorted-desc");
      const value = SORT_VALUE[key] || ((j) => j[key] ?? "");
      const sorted = [...jobs.values()].sort((a, b) => {
        const x = value(a), y = value(b);
        return (x < y ? -1 : x > y ? 1 : 0) * sortDir;
      });
      const body = document.querySelector("#jobs tbody");
      for (const j of sorted) if (rows.get(j.name)) body.appendChild(rows.get(j.name));
    }));
    $("not-succeeded").addEventListener("change", (e) => {
      $("jobs").classList.toggle("hide-succeeded", e.target.checked);
    });

    // -- controls -----------------------------------------------------------------------
    async function act(question, method, url, done) {
      if (!(await confirmAction(question))) return;
      const resp = await api(method, url);
      if (!resp.ok) { flash(await errorText(resp), true); return; }
      flash(done(await resp.json()));
    }
    $("cancel-workflow").addEventListener("click", () => act(
      `Cancel workflow ${initial.name} (${wf.id})? Its running jobs are killed.`,
      "POST", `/v1/workflows/${enc(wf.id)}/cancel`, () => `cancelling ${initial.name}`));
    $("cancel-job").addEventListener("click", () => act(
      `Cancel job ${selected} (and the jobs that need it)?`,
      "POST", `/v1/workflows/${enc(wf.id)}/jobs/${enc(selected)}/cancel`, (r) => `cancelling ${r.cancelled}`));
    $("retry-workflow").addEventListener("click", () => act(
      `Retry the failed, timed-out, cancelled and skipped jobs of ${initial.name}?`,
      "POST", `/v1/workflows/${enc(wf.id)}/retry`, (r) => {
        wf.state = "running"; // its stream ended with it: follow the new run
        headDirty = true;
        follow();
        return `retrying ${r.retried.length} job(s)`;
      }));

    const log = LogPane(wf.id);
    paint();
    follow();
  }

  // Reads a stream of text lines; `each` gets every line, `after` is called per chunk.
  async function readLines(body, each, after) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let rest = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += decoder.decode(value, { stream: true });
      const lines = rest.split("\n");
      rest = lines.pop();
      lines.forEach(each);
      if (after) after();
    }
    if (rest) each(rest);
  }

  // -- the log pane ---------------------------------------------------------------------
  function LogPane(workflowId) {
    const pre = $("log"), more = $("load-more"), note = $("log-note");
    let generation = 0, start = 0, job = null, controller = null;
    let pending = [], timer = null;

    function lineNodes(text) {
      const frag = document.createDocumentFragment();
      for (const line of text.split("\n")) {
        const div = document.createElement("div");
        if (MARKER.test(line)) div.className = "marker";
        div.textContent = line || "\u200b";
        frag.appendChild(div);
      }
      return frag;
    }

    // new lines are added in one go at most 4 times a second
    function push(line) {
      pending.push(line);
      if (!timer) timer = setTimeout(flush, PAINT_EVERY);
    }
    function flush() {
      timer = null;
      if (!pending.length) return;
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.appendChild(lineNodes(pending.join("\n")));
      pending = [];
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    }

    let attemptShown = null;

    async function open(name, attempt) {
      const mine = ++generation;
      if (controller) controller.abort();
      controller = new AbortController();
      job = name;
      pending = [];
      pre.textContent = "";
      note.textContent = "";
      const base = `/v1/workflows/${enc(workflowId)}/jobs/${enc(name)}`;
      const which = attempt ? `?attempt=${attempt}` : "";
      const tail = await fetch(`/ui/w/${enc(workflowId)}/jobs/${enc(name)}/tail${which}`);
      if (mine !== generation) return;
      if (!tail.ok) { note.textContent = await errorText(tail); more.hidden = true; return; }
      start = Number(tail.headers.get("x-log-start"));
      const end = Number(tail.headers.get("x-log-end"));
      attempt = attemptShown = tail.headers.get("x-log-attempt");
      more.hidden = start === 0;
      note.textContent = `attempt ${attempt}`;
      const text = await tail.text();
      if (text) pre.appendChild(lineNodes(text.replace(/\n$/, "")));
      pre.scrollTop = pre.scrollHeight;
      try {
        const resp = await fetch(`${base}/log?follow=true&attempt=${attempt}&offset=${end}`,
          { signal: controller.signal });
        if (resp.ok) await readLines(resp.body, (line) => { if (mine === generation) push(line); });
      } catch (err) { /* aborted: another job was picked */ }
      if (mine === generation) { flush(); note.textContent = `attempt ${attempt} (ended)`; }
    }

    more.addEventListener("click", async () => {
      if (!job || start === 0) return;
      const resp = await fetch(
        `/ui/w/${enc(workflowId)}/jobs/${enc(job)}/tail?before=${start}&attempt=${attemptShown}`);
      if (!resp.ok) { flash(await errorText(resp), true); return; }
      start = Number(resp.headers.get("x-log-start"));
      more.hidden = start === 0;
      const height = pre.scrollHeight;
      pre.insertBefore(lineNodes((await resp.text()).replace(/\n$/, "")), pre.firstChild);
      pre.scrollTop += pre.scrollHeight - height; // keep what the reader was looking at
    });

    return { open };
  }

  // -- the workflow list ------------------------------------------------------------------
  // The table is drawn again when a workflow or a job changes state (not on progress),
  // at most every 2 s: the list follows every workflow's events instead of polling, so
  // an open list costs the daemon nothing while nothing happens.
  const REFRESH_EVERY = 2000;
  function WorkflowList(refresher) {
    let since = Number(refresher.dataset.seq), timer = null, last = 0;
    const MATTERS = new Set(["workflow.submitted", "workflow.state", "job.state", "workflow.jobs_added"]);
    function refresh() {
      timer = null;
      last = Date.now();
      htmx.trigger(refresher, "refresh");
    }
    function changed() {
      if (!timer) timer = setTimeout(refresh, Math.max(0, last + REFRESH_EVERY - Date.now()));
    }
    (async function follow() {
      for (let pause = 500; ; pause = Math.min(pause * 2, 8000)) {
        try {
          const resp = await fetch(`/v1/events?follow=true&since=${since}`);
          if (resp.ok) {
            pause = 500;
            await readLines(resp.body, (line) => {
              if (!line.trim()) return;
              const ev = JSON.parse(line);
              since = Math.max(since, ev.seq);
              if (MATTERS.has(ev.kind)) changed();
            });
          }
        } catch (err) { /* the daemon restarted: follow again */ }
        changed(); // whatever happened while the stream was down
        await new Promise((r) => setTimeout(r, pause));
      }
    })();
  }

  const upload = $("upload");
  if (upload) setupUpload(upload);
  const refresher = $("list-refresh");
  if (refresher) WorkflowList(refresher);
  const initial = $("ccd-initial");
  if (initial) WorkflowPage(JSON.parse(initial.textContent));
})();
