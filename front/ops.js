// The ops view (#ops): live figures from the API's GET /ops, drawn with uPlot (vendor/, MIT).
// /ops answers cumulative counters and gauges; the rates and the hit ratio are derived here, between two polls.
// Every value from the API is put into the page as text (labels included: uPlot's legend uses textContent).
"use strict";

(() => {
  const config = window.ORDERS_CONFIG || {};
  const API_BASE = window.ORDERS_API_BASE; // chosen, and allowed by the page's policy, in script.js
  const POLL_MS = Math.max(1, Number(config.opsPollSeconds) || 5) * 1000;
  const TIMEOUT_MS = 10000;
  const MAX_POINTS = 120; // ten minutes at the default poll
  const MIN_SPAN_S = 60;
  const MAX_SERIES = 12; // dead-letter reasons and partitions beyond this are left out of a chart
  const CHART_HEIGHT = 170;
  const PALETTE = ["#4c7bf3", "#e0a100", "#1fa971", "#e5533d", "#a35bd6", "#1c9aa8", "#d9468f", "#7a8699"];

  const $ = (id) => document.getElementById(id);
  const layout = $("orders-layout");
  const opsView = $("ops-view");
  const statusLine = $("ops-status");
  const sourceList = $("ops-sources");
  const figuresBox = $("ops-figures");
  const skipLink = $("skip-link");
  const navOrders = $("view-orders");
  const navOps = $("view-ops");
  const oneDecimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  const whole = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const clock = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit", second: "2-digit" });

  // ---------------------------------------------------------------- the figures

  const num = (value) => (typeof value === "number" && Number.isFinite(value) ? value : 0);
  const byKey = (value) => (value && typeof value === "object" && !Array.isArray(value) ? value : {});
  const counters = (snapshot, name) => byKey(byKey(snapshot.counters)[name]);

  // What a counter rose by between two snapshots; a process that restarted counts from zero again.
  function increase(before, after) {
    const delta = num(after) - num(before);
    return delta >= 0 ? delta : num(after);
  }

  function rates(prev, cur, name, keys) {
    const seconds = num(cur.time) - num(prev.time);
    const out = {};
    for (const key of keys) out[key] = increase(counters(prev, name)[key], counters(cur, name)[key]) / seconds;
    return out;
  }

  const sumOf = (values) => Object.values(values).reduce((a, v) => a + (v ?? 0), 0);
  const TIERS = ["local", "memcached", "database"];
  const gauge = (snapshot, name) => {
    const value = byKey(snapshot.gauges)[name];
    return typeof value === "number" && Number.isFinite(value) ? value : null;
  };

  // A histogram's quantile between two polls, from its cumulative buckets ([upper bound, count], the last
  // bound null for +Inf), as Prometheus' histogram_quantile does: linear within the bucket the rank falls in.
  function quantile(prev, cur, name, q) {
    const buckets = (snapshot) => {
      const list = byKey(byKey(snapshot.histograms)[name]).buckets;
      return new Map((Array.isArray(list) ? list : []).map(([bound, count]) => [bound === null ? Infinity : num(bound), num(count)]));
    };
    const before = buckets(prev);
    const rows = [...buckets(cur)].sort((a, b) => a[0] - b[0]).map(([bound, count]) => [bound, increase(before.get(bound), count)]);
    const total = rows.length ? rows[rows.length - 1][1] : 0;
    if (!(total > 0)) return null;
    const rank = q * total;
    let lower = 0;
    let below = 0;
    for (const [bound, count] of rows) {
      if (count >= rank) {
        if (bound === Infinity) return lower; // beyond the largest bound: say the largest
        return lower + (bound - lower) * ((rank - below) / Math.max(count - below, 1e-9));
      }
      lower = bound;
      below = count;
    }
    return lower;
  }

  // Charted in milliseconds.
  function latency(name) {
    const ms = (seconds) => (seconds === null ? null : seconds * 1000);
    return (prev, cur) => prev && { p50: ms(quantile(prev, cur, name, 0.5)), p99: ms(quantile(prev, cur, name, 0.99)) };
  }

  const milliseconds = (ms) => `${oneDecimal.format(ms)} ms`;

  function duration(seconds) {
    if (seconds < 60) return `${oneDecimal.format(seconds)} s`;
    if (seconds < 3600) return `${oneDecimal.format(seconds / 60)} min`;
    if (seconds < 86400) return `${oneDecimal.format(seconds / 3600)} h`;
    return `${oneDecimal.format(seconds / 86400)} days`;
  }

  // Each figure: its keys in a snapshot, its values between two snapshots (prev is null at the first poll),
  // and the headline and the note written above its chart.
  const FIGURES = [
    {
      id: "stored",
      title: "Orders stored",
      keys: () => ["stored"],
      values: (prev, cur) => prev && rates(prev, cur, "ingest_records", ["stored"]),
      headline: (v) => `${oneDecimal.format(v.stored)}/s`,
      note: () => "per second, between two polls",
    },
    {
      id: "lookups",
      title: "Lookups by tier",
      keys: () => TIERS,
      values: (prev, cur) => prev && rates(prev, cur, "lookups", TIERS),
      headline: (v) => `${oneDecimal.format(sumOf(v))}/s`,
      note: () => "per second, between two polls",
    },
    {
      id: "hit-ratio",
      title: "Cache hit ratio",
      keys: () => ["hit ratio"],
      values: (prev, cur) => {
        if (!prev) return null;
        const by = Object.fromEntries(TIERS.map((t) => [t, increase(counters(prev, "lookups")[t], counters(cur, "lookups")[t])]));
        const total = by.local + by.memcached + by.database;
        return { "hit ratio": total > 0 ? ((by.local + by.memcached) / total) * 100 : null };
      },
      headline: (v) => (v["hit ratio"] === null ? "no lookups" : `${oneDecimal.format(v["hit ratio"])}%`),
      note: () => "answered from a cache, between two polls",
      range: [0, 100],
    },
    {
      id: "lag",
      title: "Consumer lag in records",
      keys: (cur) => partitions(cur).map(([key]) => key),
      values: (prev, cur) => Object.fromEntries(partitions(cur).map(([key, entry]) => [key, num(entry.lag)])),
      headline: (v) => `${whole.format(sumOf(v))} records`,
      note: (cur) => {
        const retrying = partitions(cur).filter(([, p]) => num(p.retrying)).map(([key]) => key);
        return retrying.length ? `Retrying: ${retrying.join(", ")}` : "No partition retrying";
      },
    },
    {
      id: "lag-seconds",
      title: "Consumer lag in seconds",
      keys: (cur) => partitions(cur).map(([key]) => key),
      values: (prev, cur) => Object.fromEntries(partitions(cur).map(([key, entry]) => [key, typeof entry.lag_seconds === "number" ? entry.lag_seconds : null])),
      headline: (v) => {
        const known = Object.values(v).filter((x) => x !== null);
        return known.length ? duration(Math.max(...known)) : "not known yet";
      },
      note: () => "the oldest record not yet committed, by partition",
    },
    {
      id: "dead-letters",
      title: "Dead letters by reason",
      keys: (cur) => Object.keys(counters(cur, "dead_letters")).sort(),
      values: (prev, cur) => prev && rates(prev, cur, "dead_letters", Object.keys(counters(cur, "dead_letters"))),
      headline: (v) => `${oneDecimal.format(sumOf(v))}/s`,
      note: (cur) => `${whole.format(sumOf(counters(cur, "dead_letters")))} since the functions started`,
    },
    {
      id: "dead-letter-queue",
      title: "Dead-letter queue",
      keys: () => ["waiting"],
      values: (prev, cur) => ({ waiting: gauge(cur, "dead_letter_queue_messages") }),
      headline: (v) => (v.waiting === null ? "not reported" : `${whole.format(v.waiting)} waiting`),
      note: (cur) => {
        const oldest = gauge(cur, "dead_letter_queue_oldest_age_seconds");
        if (oldest !== null) return `The oldest has waited ${duration(oldest)}`;
        return gauge(cur, "dead_letter_queue_messages") === null ? "ingest_order reports it on /metrics" : "None to read";
      },
    },
    {
      id: "lookup-latency",
      title: "Lookup latency",
      keys: () => ["p50", "p99"],
      values: latency("lookup_seconds"),
      headline: (v) => (v.p99 === null ? "no lookups" : `p99 ${milliseconds(v.p99)}`),
      note: () => "median and 99th percentile of order lookups, between two polls",
    },
    {
      id: "ingest-latency",
      title: "Ingest batch time",
      keys: () => ["p50", "p99"],
      values: latency("ingest_batch_seconds"),
      headline: (v) => (v.p99 === null ? "no batches" : `p99 ${milliseconds(v.p99)}`),
      note: () => "median and 99th percentile of a batch's ingest, between two polls",
    },
  ];

  function partitions(snapshot) {
    const list = Array.isArray(snapshot.partitions) ? snapshot.partitions : [];
    return list
      .filter((p) => p && typeof p === "object")
      .map((p) => [`${p.topic}-${p.partition}`, p]);
  }

  // ---------------------------------------------------------------- DOM (text only)

  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    node.append(...children.map((c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
    return node;
  }

  function makeCards() {
    return FIGURES.map((figure) => {
      const title = el("h2", "card__title", figure.title);
      title.id = `ops-${figure.id}-title`;
      const value = el("p", "ops-card__value", "…");
      const note = el("p", "ops-card__note", "");
      const chart = el("div", "ops-card__chart");
      const card = el("section", "card ops-card", title, value, note, chart);
      card.dataset.figure = figure.id;
      card.setAttribute("aria-labelledby", title.id);
      figuresBox.append(card);
      return { figure, value, note, chart, rows: [], keys: [], plot: null };
    });
  }

  // ---------------------------------------------------------------- charts

  function colours() {
    const styles = getComputedStyle(document.documentElement);
    return { text: styles.getPropertyValue("--muted").trim(), grid: styles.getPropertyValue("--border").trim() };
  }

  function chartData(card) {
    return [card.rows.map((r) => r.time), ...card.keys.map((key) => card.rows.map((r) => r.values[key] ?? null))];
  }

  function newPlot(card) {
    const { text, grid } = colours();
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const range = card.figure.range;
    const options = {
      width: Math.max(200, card.chart.clientWidth),
      height: CHART_HEIGHT,
      series: [{}, ...card.keys.map((key, i) => ({ label: key, stroke: PALETTE[i % PALETTE.length], width: 2 }))],
      // Clock times only (uPlot's default adds a date line that overlaps itself in a narrow chart).
      axes: [{ ...axis, space: 80, values: (u, splits) => splits.map((t) => clock.format(new Date(t * 1000))) },
        { ...axis, size: 56 }],
      // Newest on the right, at least the last minute: a steady frame from the first point on.
      scales: { x: { range: (u, min, max) => [max - Math.max(MIN_SPAN_S, max - min), max] }, y: { range: range ? () => range : (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      legend: { live: false },
      cursor: { drag: { x: false, y: false } },
    };
    const plot = new window.uPlot(options, chartData(card), card.chart);
    // A canvas says nothing to a screen reader: the headline above it is the figure in words, the legend its lines.
    plot.ctx.canvas.setAttribute("role", "img");
    plot.ctx.canvas.setAttribute("aria-label", `${card.figure.title} over the last minutes`);
    return plot;
  }

  function draw(card) {
    if (!window.uPlot) return; // the charts are extra: the headlines stand without them
    if (!card.plot) card.plot = newPlot(card);
    else card.plot.setData(chartData(card));
  }

  function redrawAll() {
    for (const card of cards) {
      if (card.plot) card.plot.destroy();
      card.plot = null;
      if (card.rows.length) draw(card);
    }
  }

  // ---------------------------------------------------------------- polling

  let cards = null;
  let previous = null;
  let timer = null;
  let controller = null;

  function record(snapshot) {
    // /ops shares one scrape for a second: the same snapshot again has nothing new (and no interval to divide by).
    if (previous && !(num(snapshot.time) > num(previous.time))) return;
    for (const card of cards) {
      const values = card.figure.values(previous, snapshot);
      if (!values) continue;
      const keys = card.figure.keys(snapshot).slice(0, MAX_SERIES);
      if (keys.join("\n") !== card.keys.join("\n") && card.plot) {
        card.plot.destroy(); // a partition or a reason appeared: uPlot's series are fixed when it is made
        card.plot = null;
      }
      card.keys = keys;
      card.rows.push({ time: num(snapshot.time), values });
      if (card.rows.length > MAX_POINTS) card.rows.shift();
      card.value.textContent = card.figure.headline(values);
      card.note.textContent = card.figure.note(snapshot);
      draw(card);
    }
    previous = snapshot;
  }

  function showSources(sources) {
    const entries = Object.entries(byKey(sources));
    sourceList.replaceChildren(
      ...entries.map(([name, state]) => {
        const item = el("li", "ops__source", `${name}: ${state}`);
        item.dataset.state = state === "ok" ? "ok" : "down";
        return item;
      }),
    );
  }

  // One poll loop at a time: a loop whose controller was replaced (the view left, the tab hidden) ends.
  async function poll() {
    const mine = new AbortController();
    controller = mine;
    const timeout = setTimeout(() => mine.abort(), TIMEOUT_MS);
    try {
      const response = await fetch(`${API_BASE}/ops`, { signal: mine.signal, headers: { Accept: "application/json" } });
      if (response.status === 404) {
        statusLine.textContent = "The ops view is off for this API: it names no metrics sources (OPS_METRICS_URLS).";
        return; // nothing to poll: it stays off until the page is reloaded
      }
      if (!response.ok) throw new Error(`the API answered ${response.status}`);
      const snapshot = await response.json();
      if (controller !== mine) return;
      showSources(snapshot.sources);
      record(snapshot);
      const down = Object.values(byKey(snapshot.sources)).filter((s) => s !== "ok").length;
      const when = new Date(num(snapshot.time) * 1000).toLocaleTimeString();
      statusLine.textContent = `Updated ${when}${down ? ` · ${down} source${down > 1 ? "s" : ""} not answering` : ""}`;
    } catch (error) {
      if (controller !== mine) return;
      statusLine.textContent = `Figures are unavailable (${error.message || error}); trying again.`;
    } finally {
      clearTimeout(timeout);
    }
    timer = setTimeout(poll, POLL_MS);
  }

  function stopPolling() {
    clearTimeout(timer);
    if (controller) controller.abort();
    controller = null;
  }

  // ---------------------------------------------------------------- the two views

  let lookupTitle = document.title;

  function show(ops) {
    if (ops === !opsView.hidden) return;
    layout.hidden = ops;
    opsView.hidden = !ops;
    for (const [link, current] of [[navOps, ops], [navOrders, !ops]]) {
      if (current) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    skipLink.href = ops ? "#ops-view" : "#main";
    stopPolling();
    if (!ops) {
      document.title = lookupTitle;
      return;
    }
    lookupTitle = document.title;
    document.title = "Ops · Orders";
    if (!cards) cards = makeCards();
    poll();
  }

  function fromHash() {
    // Other fragments (the skip link's) keep the current view.
    if (location.hash === "#ops") show(true);
    else if (location.hash === "" || location.hash === "#orders") show(false);
  }

  // A hidden tab asks nothing; it catches up when shown again (the next rates span the gap).
  document.addEventListener("visibilitychange", () => {
    stopPolling();
    if (!document.hidden && !opsView.hidden) poll();
  });
  window.addEventListener("hashchange", fromHash);
  window.addEventListener("popstate", fromHash);
  $("lookup-form").addEventListener("submit", () => show(false)); // a lookup from the ops view shows the order
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => cards && redrawAll());
  new ResizeObserver(() => {
    for (const card of cards || []) if (card.plot) card.plot.setSize({ width: Math.max(200, card.chart.clientWidth), height: CHART_HEIGHT });
  }).observe(figuresBox);
  fromHash();
})();
