// Settings of the order lookup page.
// apiBase: base URL of the get_order API, e.g. "https://abc123.lambda-url.eu-west-1.on.aws".
//   null means `${location.protocol}//${location.hostname}:8080` (the local stack).
// allowApiOverride: whether a `?api=URL` query parameter may point the page at another API. Off as shipped: on a
//   deployed page a crafted link could make it show anyone's made-up "order" under the real address. The local
//   stack and the tests turn it on (infra/native/front.sh with FRONT_ALLOW_API_OVERRIDE=1 serves this file with
//   one line added). Either way the page connects to the chosen API only.
// opsPollSeconds: how often the ops view (#ops) asks the API's /ops for fresh figures.
window.ORDERS_CONFIG = { apiBase: null, allowApiOverride: false, opsPollSeconds: 5 };
