/*
 * adplatform storefront snippet: renders ad placements from POST /api/v1/rank, fires the
 * impression beacon only once an ad has been viewable (>= 50 % of it on screen for 1 s
 * without interruption, tab visible), routes clicks through the tracking redirect, and
 * sends page_view / product_view / search events. No dependencies.
 *
 * <script src="/static/tracking/adplatform.js" data-key="PUBLISHABLE_KEY"
 *         data-user-id="shopper-1" data-api-base="" data-consent="true" defer></script>
 * <div data-adp-placement="product_below" data-adp-limit="2" data-adp-page-type="product"
 *      data-adp-product-id="sku-1" data-adp-category-id="Tents" data-adp-query=""></div>
 * <body data-adp-page-type="product" data-adp-product-id="sku-1" data-adp-query="..."> (events)
 *
 * The key needs the scopes ads:rank and events:write. window.adplatform exposes
 * {track, render, config} for pages that change without a reload.
 */
(function () {
  "use strict";

  var VIEWABLE_RATIO = 0.5;
  var VIEWABLE_MS = 1000;
  var script = document.currentScript || document.querySelector("script[data-key][src*='adplatform']");
  var ds = (script && script.dataset) || {};

  function uuid4() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var b = new Uint8Array(16);
    (window.crypto || {getRandomValues: function (a) { for (var i = 0; i < a.length; i++) a[i] = Math.random() * 256; return a; }}).getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function stored(storage, name, make) {
    try {
      var v = storage.getItem(name);
      if (!v) { v = make(); storage.setItem(name, v); }
      return v;
    } catch (e) { return make(); }  // storage disabled: a fresh id per page
  }

  function device() {
    var w = window.innerWidth || 1024;
    return w < 768 ? "mobile" : w < 1100 ? "tablet" : "desktop";
  }

  var config = {
    key: ds.key || "",
    apiBase: (ds.apiBase || "").replace(/\/$/, ""),
    userId: ds.userId || stored(window.localStorage, "adp_user_id", function () { return "anon-" + uuid4(); }),
    sessionId: stored(window.sessionStorage, "adp_session_id", uuid4),
    consent: ds.consent !== "false",
    device: ds.device || device()
  };

  function post(path, body) {
    return fetch(config.apiBase + path, {
      method: "POST",
      headers: {"Content-Type": "application/json", "Authorization": "Bearer " + config.key},
      body: JSON.stringify(body),
      keepalive: true,
      credentials: "omit"
    });
  }

  function track(type, properties) {
    var ev = {
      event_id: uuid4(),
      type: type,
      user_id: config.userId,
      session_id: config.sessionId,
      timestamp: new Date().toISOString(),
      properties: properties || {}
    };
    if (!config.consent) ev.consent = false;
    return post("/api/v1/events", {events: [ev]}).catch(function () { /* best effort */ });
  }

  function absolute(url) {
    return /^https?:\/\//.test(url) ? url : config.apiBase + url;
  }

  function beacon(url) {
    var target = absolute(url);
    if (window.fetch) {
      fetch(target, {method: "GET", keepalive: true, credentials: "omit", mode: "no-cors"}).catch(function () {
        new Image().src = target;
      });
    } else {
      new Image().src = target;
    }
  }

  // --- viewability: >= 50 % in view for 1 continuous second while the page is visible ---
  var watched = [];  // {el, url, ratio, timer, fired}

  function arm(w) {
    if (w.fired || w.timer || w.ratio < VIEWABLE_RATIO || document.visibilityState === "hidden") return;
    w.timer = setTimeout(function () {
      w.timer = null;
      if (w.fired || w.ratio < VIEWABLE_RATIO || document.visibilityState === "hidden") return;
      w.fired = true;
      w.el.setAttribute("data-adp-viewed", "true");
      if (observer) observer.unobserve(w.el);
      beacon(w.url);
    }, VIEWABLE_MS);
  }

  function disarm(w) {
    if (w.timer) { clearTimeout(w.timer); w.timer = null; }
  }

  var observer = window.IntersectionObserver ? new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      for (var i = 0; i < watched.length; i++) {
        var w = watched[i];
        if (w.el !== entry.target) continue;
        w.ratio = entry.isIntersecting ? entry.intersectionRatio : 0;
        if (w.ratio >= VIEWABLE_RATIO) arm(w); else disarm(w);
      }
    });
  }, {threshold: [0, 0.25, VIEWABLE_RATIO, 0.75, 1]}) : null;

  document.addEventListener("visibilitychange", function () {
    watched.forEach(function (w) { if (document.visibilityState === "hidden") disarm(w); else arm(w); });
  });

  function watch(el, impressionUrl) {
    var w = {el: el, url: impressionUrl, ratio: 0, timer: null, fired: false};
    watched.push(w);
    if (observer) observer.observe(el);
    // without IntersectionObserver viewability cannot be measured: no beacon is sent
  }

  // --- rendering ---
  function text(tag, cls, value) {
    var node = document.createElement(tag);
    node.className = cls;
    node.textContent = value || "";
    return node;
  }

  function renderAd(ad) {
    var a = document.createElement("a");
    a.className = "adp-ad";
    a.href = absolute(ad.click_url);  // the tracking redirect records the click, then the landing page
    a.rel = "sponsored noopener";
    a.setAttribute("data-adp-creative-id", String(ad.creative_id));
    a.setAttribute("data-adp-position", String(ad.position));
    a.appendChild(text("span", "adp-label", "Sponsored"));
    if (ad.image_url) {
      var img = document.createElement("img");
      img.className = "adp-image";
      img.alt = "";
      img.loading = "lazy";
      img.src = ad.image_url;
      img.onerror = function () { img.remove(); };
      a.appendChild(img);
    }
    a.appendChild(text("strong", "adp-headline", ad.headline));
    if (ad.body) a.appendChild(text("span", "adp-body", ad.body));
    return a;
  }

  function contextOf(el) {
    var d = el.dataset;
    var ctx = {page_type: d.adpPageType || "home", device: config.device};
    if (d.adpCategoryId) ctx.category_id = d.adpCategoryId;
    if (d.adpProductId) ctx.product_id = d.adpProductId;
    if (d.adpQuery) ctx.query = d.adpQuery;
    return ctx;
  }

  function render(el) {
    var limit = parseInt(el.dataset.adpLimit || "1", 10) || 1;
    el.setAttribute("data-adp-state", "loading");
    return post("/api/v1/rank", {
      user_id: config.userId,
      session_id: config.sessionId,
      placement: el.dataset.adpPlacement,
      limit: Math.max(1, Math.min(10, limit)),
      context: contextOf(el)
    }).then(function (r) {
      if (!r.ok) throw new Error("rank " + r.status);
      return r.json();
    }).then(function (body) {
      el.textContent = "";
      el.setAttribute("data-adp-request-id", body.request_id || "");
      (body.ads || []).forEach(function (ad) {
        var node = renderAd(ad);
        el.appendChild(node);
        watch(node, ad.impression_url);
      });
      el.setAttribute("data-adp-state", body.ads && body.ads.length ? "filled" : "empty");
    }).catch(function (err) {
      el.setAttribute("data-adp-state", "error");
      if (window.console) console.warn("adplatform:", err);
    });
  }

  function pageEvents() {
    var b = document.body.dataset;
    track("page_view", {url: location.href});
    if (b.adpPageType === "product" && b.adpProductId) track("product_view", {product_id: b.adpProductId});
    if (b.adpPageType === "search" && b.adpQuery) track("search", {query: b.adpQuery});
  }

  function start() {
    if (!config.key) {
      if (window.console) console.warn("adplatform: no data-key on the script tag; nothing rendered");
      return;
    }
    pageEvents();
    Array.prototype.forEach.call(document.querySelectorAll("[data-adp-placement]"), render);
  }

  window.adplatform = {config: config, track: track, render: render};
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
