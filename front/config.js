// Deployment settings for the order lookup page.
// apiBase: base URL of the get_order API, e.g. "https://orders.example.com".
//   null means `${location.protocol}//${location.hostname}:8080` (the local stack).
// A `?api=` query parameter overrides it (used by the browser tests).
window.ORDERS_CONFIG = { apiBase: null };
