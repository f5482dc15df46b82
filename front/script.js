// Order lookup page. No build step, no dependencies.
// Every value that comes from the API is put into the page with textContent / createElement only.
"use strict";

(() => {
  const UID_RE = /^[A-Za-z0-9_-]{1,64}$/;
  const UID_RULE = "An order UID is 1–64 characters: letters, digits, “_” or “-”.";
  const RECENT_LIMIT = 20;
  const TIMEOUT_MS = 15000;
  const HISTORY_KEY = "orders.lookups";
  const HISTORY_LIMIT = 10;
  const COPIED_MS = 2000;

  const $ = (id) => document.getElementById(id);
  const form = $("lookup-form");
  const input = $("order-uid");
  const statusBox = $("status");
  const orderView = $("order-view");
  const emptyView = $("empty-view");
  const emptyText = $("empty-text");
  const copyStatus = $("copy-status");
  const historyPanel = $("history");
  const historyList = $("history-list");
  const historyClear = $("history-clear");
  const recentPanel = $("recent");
  const recentList = $("recent-list");
  const recentStatus = $("recent-status");
  const recentRefresh = $("recent-refresh");

  const API_BASE = resolveApiBase();
  connectOnlyTo(API_BASE);
  window.ORDERS_API_BASE = API_BASE; // the ops view (ops.js) asks the same API, and only it

  // ---------------------------------------------------------------- configuration

  function httpUrl(candidate) {
    if (typeof candidate !== "string" || candidate.trim() === "") return null;
    try {
      const url = new URL(candidate.trim(), location.href);
      if (url.protocol !== "http:" && url.protocol !== "https:") return null;
      return url.href.replace(/\/+$/, "");
    } catch {
      return null;
    }
  }

  function resolveApiBase() {
    const config = window.ORDERS_CONFIG || {};
    // A `?api=` link could make the real page show an attacker's "order" under the real address: it is
    // honoured only where config.js allows it (the local stack and the tests), never in a deployment.
    const override = config.allowApiOverride === true ? httpUrl(new URLSearchParams(location.search).get("api")) : null;
    return override || httpUrl(config.apiBase) || `${location.protocol}//${location.hostname}:8080`;
  }

  function connectOnlyTo(apiBase) {
    // index.html's policy cannot know the configured API; a second policy narrows connect-src to it, and
    // the browser enforces both, so nothing on this page can reach any other origin.
    const policy = document.createElement("meta");
    policy.httpEquiv = "Content-Security-Policy";
    policy.content = `connect-src ${new URL(apiBase).origin}`;
    document.head.append(policy);
  }

  // ---------------------------------------------------------------- formatting

  const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const numberFormat = new Intl.NumberFormat();
  const percentFormat = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 2 });
  const moneyFormats = new Map();

  function isNumeric(value) {
    return (typeof value === "number" && Number.isFinite(value)) || typeof value === "bigint";
  }

  // Amounts are integers in the currency's minor unit (cents, pence, kopecks; the yen has none): shown as
  // amount / 10 ** minor unit with the currency's own decimals, which Intl knows (2 for USD, 0 for JPY).
  function formatMoney(amount, currency) {
    if (!isNumeric(amount)) return "—";
    if (typeof currency === "string" && /^[A-Z]{3}$/.test(currency)) {
      let format = moneyFormats.get(currency);
      if (!format) {
        try {
          format = new Intl.NumberFormat(undefined, { style: "currency", currency });
        } catch {
          format = null;
        }
        moneyFormats.set(currency, format);
      }
      if (format) return format.format(Number(amount) / 10 ** format.resolvedOptions().maximumFractionDigits);
    }
    return `${numberFormat.format(amount)} ${typeof currency === "string" ? currency : ""}`.trim();
  }

  function toDate(value) {
    const date = value instanceof Date ? value : new Date(value);
    return Number.isNaN(date.getTime()) ? null : date;
  }

  // A <time> element in the reader's locale and time zone, with the exact instant as its tooltip.
  function timeElement(date, fallbackText) {
    if (!date) return textOrDash(fallbackText);
    return el("time", { dateTime: date.toISOString(), title: date.toISOString() }, dateTimeFormat.format(date));
  }

  function unixSecondsToDate(seconds) {
    return isNumeric(seconds) ? toDate(Number(seconds) * 1000) : null;
  }

  // ---------------------------------------------------------------- DOM helpers (text only)

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value === undefined || value === null || value === false) continue;
        if (key === "className") node.className = value;
        else if (key === "dataset") Object.assign(node.dataset, value);
        else if (key === "dateTime" || key === "title" || key === "href" || key === "id") node[key] = value;
        else node.setAttribute(key, value === true ? "" : String(value));
      }
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function isBlank(value) {
    return value === undefined || value === null || value === "";
  }

  function textOrDash(value) {
    return isBlank(value) ? el("span", { className: "muted" }, "—") : String(value);
  }

  // A definition list from [label, value, field] rows; value may be a string or a node.
  function definitions(rows, className) {
    const list = el("dl", { className: className || "facts" });
    for (const [label, value, field] of rows) {
      list.append(
        el("div", { className: "facts__row" }, el("dt", null, label), el("dd", { dataset: { field } }, value)),
      );
    }
    return list;
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(kind, message, status, headers) {
      super(message);
      this.kind = kind;
      this.status = status;
      this.headers = headers || null;
    }
  }

  // ---------------------------------------------------------------- where the answer came from

  // Server-Timing (W3C), as the API sends it: `tier;desc="local", app;dur=0.42`. Metric name -> its parameters.
  // The API's values hold no commas or semicolons inside quotes, so a plain split reads them.
  function parseServerTiming(value) {
    const metrics = new Map();
    for (const entry of (value || "").split(",")) {
      const [name, ...params] = entry.split(";").map((part) => part.trim());
      if (!name) continue;
      const metric = {};
      for (const param of params) {
        const eq = param.indexOf("=");
        if (eq < 1) continue;
        let paramValue = param.slice(eq + 1).trim();
        if (paramValue.length >= 2 && paramValue.startsWith('"') && paramValue.endsWith('"')) {
          paramValue = paramValue.slice(1, -1);
        }
        metric[param.slice(0, eq).trim().toLowerCase()] = paramValue;
      }
      metrics.set(name.toLowerCase(), metric);
    }
    return metrics;
  }

  // The API's tiers (its X-Cache values) in words a reader knows.
  const TIER_WORDS = {
    local: "memory cache",
    memcached: "memcached",
    database: "the database",
  };
  const TIER_HINTS = {
    local: "The order was in the answering server's own memory.",
    memcached: "The order was in memcached, the cache all servers share.",
    database: "Neither cache had the order: it was read from PostgreSQL, and is cached now.",
  };
  const fewDigits = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 2 });
  const wholeNumber = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

  // {tier, text, hint} for an answer's headers, or null when the answer does not say (another API, an old one).
  function servedBy(headers, verb) {
    if (!headers) return null;
    const metrics = parseServerTiming(headers.get("Server-Timing"));
    const tier = (metrics.get("tier") || {}).desc;
    if (!tier) return null;
    const words = TIER_WORDS[tier] || tier;
    const ms = Number.parseFloat((metrics.get("app") || {}).dur);
    const took = Number.isFinite(ms) && ms >= 0 ? ` in ${(ms >= 100 ? wholeNumber : fewDigits).format(ms)} ms` : "";
    return { tier, text: `${verb} ${words}${took}`, hint: TIER_HINTS[tier] || null };
  }

  // JSON.parse that keeps integers beyond 2^53 exact (as BigInt) where the browser exposes the source text.
  function parseJson(text) {
    return JSON.parse(text, (key, value, context) => {
      if (
        typeof value === "number" &&
        !Number.isSafeInteger(value) &&
        context &&
        typeof context.source === "string" &&
        /^-?\d+$/.test(context.source)
      ) {
        return BigInt(context.source);
      }
      return value;
    });
  }

  function serverMessage(body) {
    if (body && typeof body.message === "string" && body.message.trim() !== "") {
      return body.message.trim().slice(0, 500);
    }
    return null;
  }

  // The JSON body of a GET, and the answer's headers; an ApiError for anything but a readable 2xx.
  // cache: "no-cache" for orders: the browser asks again each time (a 304 when it holds the order already), so
  // the answer's Server-Timing is this lookup's, not the one stored with the first answer.
  async function apiGet(path, signal, cache = "default") {
    const timeout = AbortSignal.timeout(TIMEOUT_MS);
    const combined = signal && AbortSignal.any ? AbortSignal.any([signal, timeout]) : signal || timeout;
    let response;
    let text;
    try {
      response = await fetch(API_BASE + path, {
        signal: combined,
        headers: { Accept: "application/json" },
        credentials: "omit",
        cache,
      });
      text = await response.text();
    } catch (error) {
      if (signal && signal.aborted) throw error; // superseded by a newer request
      if (timeout.aborted) {
        throw new ApiError("network", "The order service did not answer in time. Try again in a moment.");
      }
      throw new ApiError(
        "network",
        "Could not reach the order service. Check your connection and try again.",
      );
    }
    let body = null;
    try {
      body = text ? parseJson(text) : null;
    } catch {
      body = null;
    }
    if (response.ok) {
      if (body === null || typeof body !== "object") {
        throw new ApiError("error", "The order service sent a response this page cannot read.", response.status);
      }
      return { body, headers: response.headers };
    }
    const message = serverMessage(body);
    switch (response.status) {
      case 400:
        throw new ApiError("bad-input", message || UID_RULE, 400);
      case 404:
        throw new ApiError("not-found", message || "There is no order with this UID.", 404, response.headers);
      case 503:
        throw new ApiError(
          "unavailable",
          message || "The order service is temporarily unavailable. Try again in a moment.",
          503,
        );
      default:
        throw new ApiError(
          "error",
          message || `The order service answered with an unexpected status (${response.status}).`,
          response.status,
        );
    }
  }

  // ---------------------------------------------------------------- status line

  const STATUS_TITLES = {
    "loading": "Loading",
    "not-found": "Order not found",
    "bad-input": "Invalid order UID",
    "unavailable": "Service unavailable",
    "network": "Network error",
    "error": "Something went wrong",
  };

  function setStatus(state, message, note) {
    statusBox.replaceChildren();
    statusBox.dataset.state = state;
    statusBox.className = `status status--${state}`;
    statusBox.hidden = false;
    if (state === "ok") {
      statusBox.classList.add("visually-hidden");
      statusBox.append(message);
      return;
    }
    if (state === "loading") {
      statusBox.append(el("span", { className: "spinner", "aria-hidden": "true" }), el("span", null, message));
      return;
    }
    statusBox.append(
      el("span", { className: "status__icon", "aria-hidden": "true" }),
      el(
        "span",
        { className: "status__body" },
        el("strong", { className: "status__title" }, STATUS_TITLES[state] || STATUS_TITLES.error),
        el("span", { className: "status__message" }, message),
        note ? el("span", { className: "status__note", dataset: { field: "served", tier: note.tier } }, note.text) : null,
      ),
    );
  }

  function clearStatus() {
    statusBox.replaceChildren();
    statusBox.hidden = true;
    statusBox.dataset.state = "idle";
  }

  function setInputInvalid(invalid) {
    if (invalid) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", "order-uid-hint status");
    } else {
      input.removeAttribute("aria-invalid");
      input.setAttribute("aria-describedby", "order-uid-hint");
    }
  }

  // ---------------------------------------------------------------- copying

  // The Clipboard API where the page may use it (a secure context: https or localhost), else the older
  // select-and-copy on a hidden text area. True when the text was copied.
  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch {
        // refused (no permission, page not focused): try the older way
      }
    }
    const active = document.activeElement;
    const area = el("textarea", { className: "clipboard-fallback", readonly: true, "aria-hidden": "true", tabindex: "-1" });
    area.value = text;
    document.body.append(area);
    area.select();
    let copied = false;
    try {
      copied = document.execCommand("copy");
    } catch {
      copied = false;
    }
    area.remove();
    if (active instanceof HTMLElement) active.focus();
    return copied;
  }

  // A button that copies `text`, says "Copied" on itself for a moment, and tells screen readers what was copied.
  function copyButton(label, what, text, name) {
    const button = el("button", { type: "button", className: "button button--ghost button--small copy", dataset: { copy: name } }, label);
    let timer = null;
    button.addEventListener("click", async () => {
      const copied = await copyText(text);
      clearTimeout(timer);
      button.textContent = copied ? "Copied" : "Copy failed";
      button.dataset.state = copied ? "copied" : "failed";
      copyStatus.textContent = copied ? `${what} copied.` : `Could not copy. Select the text and copy it by hand.`;
      timer = setTimeout(() => {
        button.textContent = label;
        delete button.dataset.state;
        copyStatus.textContent = "";
      }, COPIED_MS);
    });
    return button;
  }

  // ---------------------------------------------------------------- order rendering

  function renderOrder(order, served) {
    const payment = order.payment || {};
    const delivery = order.delivery || {};
    const items = Array.isArray(order.items) ? order.items : [];
    const currency = payment.currency;
    const rawJson = JSON.stringify(order, (k, v) => (typeof v === "bigint" ? v.toString() : v), 2);

    const copyButtons = [copyButton("Copy order UID", "Order UID", order.order_uid, "order_uid")];
    if (!isBlank(order.track_number)) {
      copyButtons.push(copyButton("Copy track number", "Track number", String(order.track_number), "track_number"));
    }
    copyButtons.push(copyButton("Copy JSON", "The order as JSON", rawJson, "json"));

    const header = el(
      "header",
      { className: "order__header" },
      el(
        "div",
        { className: "order__heading" },
        el("p", { className: "eyebrow" }, "Order"),
        el("h1", { id: "order-title", className: "order__uid", dataset: { field: "order_uid" } }, order.order_uid),
        served
          ? el("p", { className: "served", title: served.hint, dataset: { field: "served", tier: served.tier } }, served.text)
          : null,
      ),
      el("div", { className: "order__actions", role: "group", "aria-label": "Copy" }, copyButtons),
      definitions(
        [
          ["Track number", textOrDash(order.track_number), "track_number"],
          ["Created", timeElement(toDate(order.date_created), order.date_created), "date_created"],
          ["Customer", textOrDash(order.customer_id), "customer_id"],
          ["Delivery service", textOrDash(order.delivery_service), "delivery_service"],
        ],
        "facts facts--inline",
      ),
    );

    const addressLines = el(
      "address",
      { className: "address" },
      el("span", { dataset: { field: "delivery.address" } }, textOrDash(delivery.address)),
      el(
        "span",
        null,
        el("span", { dataset: { field: "delivery.zip" } }, textOrDash(delivery.zip)),
        " ",
        el("span", { dataset: { field: "delivery.city" } }, textOrDash(delivery.city)),
      ),
      isBlank(delivery.region) ? null : el("span", { dataset: { field: "delivery.region" } }, delivery.region),
    );

    const deliveryCard = el(
      "section",
      { className: "card", "aria-labelledby": "delivery-title" },
      el("h2", { id: "delivery-title", className: "card__title" }, "Delivery"),
      el("p", { className: "card__lead", dataset: { field: "delivery.name" } }, textOrDash(delivery.name)),
      addressLines,
      definitions([
        ["Phone", isBlank(delivery.phone) ? textOrDash("") : el("a", { href: `tel:${delivery.phone}` }, delivery.phone), "delivery.phone"],
        ["Email", isBlank(delivery.email) ? textOrDash("") : el("a", { href: `mailto:${delivery.email}` }, delivery.email), "delivery.email"],
      ]),
    );

    const breakdown = definitions(
      [
        ["Goods", formatMoney(payment.goods_total, currency), "payment.goods_total"],
        ["Delivery", formatMoney(payment.delivery_cost, currency), "payment.delivery_cost"],
        ["Custom fee", formatMoney(payment.custom_fee, currency), "payment.custom_fee"],
      ],
      "facts facts--money",
    );

    const paymentCard = el(
      "section",
      { className: "card", "aria-labelledby": "payment-title" },
      el("h2", { id: "payment-title", className: "card__title" }, "Payment"),
      el(
        "p",
        { className: "total" },
        el("span", { className: "total__label" }, "Total"),
        el("span", { className: "total__value", dataset: { field: "payment.amount" } }, formatMoney(payment.amount, currency)),
      ),
      breakdown,
      mismatchNote(payment),
      definitions(
        [
        ["Provider", textOrDash(payment.provider), "payment.provider"],
        ["Bank", textOrDash(payment.bank), "payment.bank"],
        ["Paid at", timeElement(unixSecondsToDate(payment.payment_dt), payment.payment_dt), "payment.payment_dt"],
        ["Currency", textOrDash(payment.currency), "payment.currency"],
        ],
        "facts facts--details",
      ),
    );

    const itemsSection = el(
      "section",
      { className: "card card--wide", "aria-labelledby": "items-title" },
      el(
        "h2",
        { id: "items-title", className: "card__title" },
        "Items ",
        el("span", { className: "count" }, numberFormat.format(items.length)),
      ),
      itemsTable(items, currency),
    );

    const technical = el(
      "details",
      { className: "card card--wide technical" },
      el("summary", null, "Technical details"),
      definitions([
        ["Entry", textOrDash(order.entry), "entry"],
        ["Locale", textOrDash(order.locale), "locale"],
        ["Transaction", textOrDash(payment.transaction), "payment.transaction"],
        ["Request ID", textOrDash(payment.request_id), "payment.request_id"],
        ["Internal signature", textOrDash(order.internal_signature), "internal_signature"],
        ["Shard key", textOrDash(order.shardkey), "shardkey"],
        ["SM ID", textOrDash(order.sm_id), "sm_id"],
        ["OOF shard", textOrDash(order.oof_shard), "oof_shard"],
      ]),
      el("h3", { className: "technical__title" }, "Raw JSON"),
      el("pre", { className: "raw", tabindex: "0" }, rawJson),
    );

    orderView.replaceChildren(
      header,
      el("div", { className: "cards" }, deliveryCard, paymentCard),
      itemsSection,
      technical,
    );
  }

  function mismatchNote(payment) {
    const parts = [payment.goods_total, payment.delivery_cost, payment.custom_fee];
    if (!isNumeric(payment.amount) || !parts.every(isNumeric)) return null;
    const sum = parts.reduce((acc, v) => acc + BigInt(v), 0n);
    if (sum === BigInt(payment.amount)) return null;
    return el(
      "p",
      { className: "note" },
      `Goods, delivery and custom fee add up to ${formatMoney(sum, payment.currency)}, not the total.`,
    );
  }

  function itemsTable(items, currency) {
    const columns = [
      ["Item", ""],
      ["Brand", ""],
      ["Price", "num"],
      ["Sale", "num"],
      ["Total", "num"],
      ["Status", "num"],
    ];
    const head = el("thead", null, el("tr", null, columns.map(([label, cls]) => el("th", { scope: "col", className: cls || null }, label))));
    const body = el("tbody");
    for (const item of items) {
      const sub = [];
      if (!isBlank(item.size) && item.size !== "0") sub.push(`Size ${item.size}`);
      if (!isBlank(item.nm_id)) sub.push(`Art. ${item.nm_id}`);
      body.append(
        el(
          "tr",
          null,
          el(
            "th",
            { scope: "row", className: "item", "data-label": "Item" },
            el("span", { className: "item__name", dataset: { field: "item.name" } }, textOrDash(item.name)),
            sub.length ? el("span", { className: "item__sub" }, sub.join(" · ")) : null,
          ),
          el("td", { "data-label": "Brand", dataset: { field: "item.brand" } }, textOrDash(item.brand)),
          el("td", { className: "num", "data-label": "Price", dataset: { field: "item.price" } }, formatMoney(item.price, currency)),
          el(
            "td",
            { className: "num", "data-label": "Sale", dataset: { field: "item.sale" } },
            isNumeric(item.sale) && Number(item.sale) > 0
              ? el("span", { className: "badge badge--sale" }, `−${percentFormat.format(Number(item.sale) / 100)}`)
              : textOrDash(""),
          ),
          el("td", { className: "num strong", "data-label": "Total", dataset: { field: "item.total_price" } }, formatMoney(item.total_price, currency)),
          el(
            "td",
            { className: "num", "data-label": "Status", dataset: { field: "item.status" } },
            el("span", { className: "badge" }, textOrDash(item.status)),
          ),
        ),
      );
    }
    return el(
      "div",
      { className: "table-wrap", role: "region", "aria-labelledby": "items-title", tabindex: "0" },
      el("table", { className: "items" }, head, body),
    );
  }

  // ---------------------------------------------------------------- lookup flow

  let lookupController = null;
  let shownUid = null;

  function uidFromUrl() {
    return new URLSearchParams(location.search).get("order_uid");
  }

  function urlForUid(uid) {
    const url = new URL(location.href);
    if (uid === null) url.searchParams.delete("order_uid");
    else url.searchParams.set("order_uid", uid);
    url.hash = "";
    return url.pathname + url.search;
  }

  function showEmpty() {
    if (lookupController) lookupController.abort();
    clearStatus();
    setInputInvalid(false);
    orderView.hidden = true;
    orderView.replaceChildren();
    emptyView.hidden = false;
    shownUid = null;
    document.title = "Order lookup";
    markCurrentRecent(null);
  }

  function showProblem(state, message, note) {
    orderView.hidden = true;
    orderView.replaceChildren();
    orderView.removeAttribute("aria-busy");
    emptyView.hidden = true;
    shownUid = null;
    setStatus(state, message, note);
    document.title = `${STATUS_TITLES[state] || STATUS_TITLES.error} · Order lookup`;
  }

  // Show an order. push: add a history entry; focusOrder: move focus to the order once shown.
  function navigate(rawUid, { push = false, focusOrder = false } = {}) {
    const uid = rawUid.trim();
    if (!UID_RE.test(uid)) {
      if (lookupController) lookupController.abort();
      setInputInvalid(true);
      markCurrentRecent(null);
      showProblem(
        "bad-input",
        uid === "" ? `Enter an order UID. ${UID_RULE}` : `“${uid}” is not a valid order UID. ${UID_RULE}`,
      );
      return;
    }
    setInputInvalid(false);
    if (push && uidFromUrl() !== uid) history.pushState({ order_uid: uid }, "", urlForUid(uid));
    markCurrentRecent(uid);
    lookup(uid, focusOrder);
  }

  async function lookup(uid, focusOrder) {
    if (lookupController) lookupController.abort();
    const controller = new AbortController();
    lookupController = controller;

    setStatus("loading", `Looking up order ${uid}…`);
    if (!orderView.hidden) orderView.setAttribute("aria-busy", "true");
    try {
      const { body: order, headers } = await apiGet(`/orders/${encodeURIComponent(uid)}`, controller.signal, "no-cache");
      if (controller.signal.aborted) return;
      const served = servedBy(headers, "Served from");
      renderOrder(order, served);
      orderView.removeAttribute("aria-busy");
      orderView.hidden = false;
      emptyView.hidden = true;
      shownUid = uid;
      remember(uid);
      setStatus("ok", `Showing order ${uid}.${served ? ` ${served.text}.` : ""}`);
      document.title = `Order ${uid} · Order lookup`;
      if (focusOrder) orderView.focus();
    } catch (error) {
      if (controller.signal.aborted) return;
      if (error instanceof ApiError) {
        if (error.kind === "bad-input") setInputInvalid(true);
        if (error.kind === "not-found") {
          showProblem("not-found", `There is no order with UID “${uid}”.`, servedBy(error.headers, "Answered by"));
        } else {
          showProblem(error.kind, error.message);
        }
      } else {
        showProblem("error", "Something went wrong while showing this order.");
        console.error(error);
      }
    } finally {
      if (lookupController === controller) lookupController = null;
    }
  }

  // ---------------------------------------------------------------- recent orders

  let recentController = null;

  function markCurrentRecent(uid) {
    for (const link of document.querySelectorAll("#recent-list a[data-uid], #history-list a[data-uid]")) {
      if (uid !== null && link.dataset.uid === uid) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    }
  }

  // A link that shows order `uid` in place (a plain link still opens it in a new tab).
  function orderLink(uid, className, ...children) {
    const link = el("a", { className, href: urlForUid(uid), dataset: { uid } }, ...children);
    link.addEventListener("click", (event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      event.preventDefault();
      input.value = uid;
      navigate(uid, { push: true, focusOrder: true });
    });
    return link;
  }

  function recentEntry(summary) {
    const uid = summary.order_uid;
    const meta = [];
    const created = toDate(summary.date_created);
    if (created) meta.push(timeElement(created));
    if (isNumeric(summary.item_count)) {
      meta.push(`${numberFormat.format(summary.item_count)} ${Number(summary.item_count) === 1 ? "item" : "items"}`);
    }
    const link = orderLink(
      uid,
      "recent__item",
      el(
        "span",
        { className: "recent__line" },
        el("span", { className: "recent__uid" }, uid),
        el("span", { className: "recent__amount" }, formatMoney(summary.amount, summary.currency)),
      ),
      el("span", { className: "recent__track" }, textOrDash(summary.track_number)),
      el("span", { className: "recent__meta" }, meta.flatMap((part, i) => (i ? [" · ", part] : [part]))),
    );
    return el("li", null, link);
  }

  async function loadRecent() {
    if (recentController) recentController.abort();
    const controller = new AbortController();
    recentController = controller;
    recentList.setAttribute("aria-busy", "true");
    recentStatus.dataset.state = "loading";
    recentStatus.textContent = "Loading recent orders…";
    try {
      const { body } = await apiGet(`/orders?limit=${RECENT_LIMIT}`, controller.signal);
      if (controller.signal.aborted) return;
      const orders = Array.isArray(body.orders) ? body.orders : [];
      const valid = orders.filter((o) => o && typeof o.order_uid === "string" && UID_RE.test(o.order_uid));
      recentList.replaceChildren(...valid.map(recentEntry));
      markCurrentRecent(shownUid || uidFromUrl());
      recentStatus.dataset.state = valid.length ? "ok" : "empty";
      recentStatus.textContent = valid.length ? "" : "No orders yet.";
    } catch (error) {
      if (controller.signal.aborted) return;
      recentList.replaceChildren();
      if (error instanceof ApiError && error.status === 404) {
        // The API lists no orders here (RECENT_ORDERS_ENABLED=false, the deployed default): nothing to offer.
        recentPanel.hidden = true;
        emptyText.textContent = "Enter an order UID above to see the order.";
        return;
      }
      recentStatus.dataset.state = "error";
      recentStatus.textContent =
        error instanceof ApiError ? `Recent orders are unavailable. ${error.message}` : "Recent orders are unavailable.";
    } finally {
      recentList.removeAttribute("aria-busy");
      if (recentController === controller) recentController = null;
    }
  }

  // ---------------------------------------------------------------- your lookups (this browser only)

  // Stored entries are read back as untrusted: only well-formed uids, at most HISTORY_LIMIT of them.
  function readHistory() {
    try {
      const stored = JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]");
      return Array.isArray(stored)
        ? stored.filter((uid) => typeof uid === "string" && UID_RE.test(uid)).slice(0, HISTORY_LIMIT)
        : [];
    } catch {
      return []; // storage turned off, full, or holding something else
    }
  }

  function writeHistory(uids) {
    try {
      if (uids.length) localStorage.setItem(HISTORY_KEY, JSON.stringify(uids));
      else localStorage.removeItem(HISTORY_KEY);
    } catch {
      // storage turned off or full: the list lives as long as the page
    }
    renderHistory(uids);
  }

  function remember(uid) {
    writeHistory([uid, ...readHistory().filter((other) => other !== uid)].slice(0, HISTORY_LIMIT));
  }

  function renderHistory(uids) {
    historyList.replaceChildren(
      ...uids.map((uid) => el("li", null, orderLink(uid, "history__item", el("span", { className: "history__uid" }, uid)))),
    );
    historyPanel.hidden = uids.length === 0;
    markCurrentRecent(shownUid || uidFromUrl());
  }

  historyClear.addEventListener("click", () => {
    writeHistory([]);
    input.focus(); // the button is gone with its panel
  });

  // Another tab of the page looked something up, or cleared the list.
  window.addEventListener("storage", (event) => {
    if (event.key === HISTORY_KEY || event.key === null) renderHistory(readHistory());
  });

  // ---------------------------------------------------------------- wiring

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    navigate(input.value, { push: true });
  });

  input.addEventListener("input", () => {
    if (input.getAttribute("aria-invalid") === "true" && UID_RE.test(input.value.trim())) setInputInvalid(false);
  });

  recentRefresh.addEventListener("click", loadRecent);

  function fromLocation() {
    const uid = uidFromUrl();
    if (uid === null) {
      input.value = "";
      showEmpty();
    } else {
      input.value = uid;
      navigate(uid);
    }
  }

  window.addEventListener("popstate", fromLocation);

  renderHistory(readHistory());
  fromLocation();
  loadRecent();
})();
