// Settings of the order lookup page.
// apiBase: base URL of the get_order API, e.g. "https://abc123.lambda-url.eu-west-1.on.aws".
//   null means `${location.protocol}//${location.hostname}:8080` (the local stack).
// allowApiOverride: whether a `?api=URL` query parameter may point the page at another API. On for the local
//   stack and the tests; set it to false in a deployment, or a crafted link to the real page could make it show
//   anyone's made-up "order" under the real address. Either way the page connects to the chosen API only.
// opsPollSeconds: how often the ops view (#ops) asks the API's /ops for fresh figures.
window.ORDERS_CONFIG = { apiBase: null, allowApiOverride: false, opsPollSeconds: 5 };
