const origin = location.origin;
const $ = (id) => document.getElementById(id);
$('base').value = origin;
$('curl').textContent =
  "curl -s " + origin + "/api_keys -H 'Authorization: Bearer <bootstrap private key>' \\\n" +
  "  -d '{\"api_key\":{\"name\":\"web\",\"key_type\":\"public\",\"allowed_origins\":[\"" + origin + "\"],\"allowed_assistants\":[\"asst-demo\"]}}'";
// retryIn reads Retry-After (seconds, or an HTTP date) as whole seconds
// from now; null when it is absent or unreadable.
const retryIn = (value) => {
  if (value === null) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
};
// describe says what an answer means: its status and body, and for a key
// with limits what the rate-limit headers tell (a page on another origin
// can read them too: the API lists them in Access-Control-Expose-Headers).
const describe = (res, text) => {
  const notes = [];
  if (res.status === 429) {
    let body = {};
    try { body = JSON.parse(text); } catch (e) { /* not JSON: the raw text is shown */ }
    notes.push('Too many requests: ' + (body.error || 'refused') + (body.restriction ? ' (' + body.restriction + ')' : ''));
    const wait = retryIn(res.headers.get('Retry-After'));
    notes.push(wait === null ? 'No Retry-After: waiting will not help; raise the key\'s limits with PUT /api_keys/{id}.' : 'retry in ' + wait + ' s');
  }
  for (const name of ['RateLimit', 'RateLimit-Policy']) {
    const value = res.headers.get(name);
    if (value !== null) notes.push(name + ': ' + value);
  }
  return res.status + ' ' + text.trim() + (notes.length ? '\n\n' + notes.join('\n') : '');
};
// token is the token the backend gave, for the assistant it names; null
// before the first.
let token = null;
// getToken asks the page's own backend (same origin: a real one would know
// the user by the session cookie this request carries) for a token, and
// shows it; it reports whether it got one.
const getToken = async () => {
  const assistant = $('assistant').value.trim();
  const res = await fetch('/demo/token', {
    method: 'POST',
    credentials: 'same-origin',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({assistant_id: assistant}),
  });
  const text = await res.text();
  if (res.status !== 201) {
    token = null;
    $('token').textContent = '';
    $('token-info').textContent = 'no token: ' + res.status + ' ' + text.trim();
    return false;
  }
  const t = JSON.parse(text);
  const expires = new Date(t.expires_at);
  token = {value: t.token, assistant, expires};
  $('token').textContent = t.token;
  $('token-info').textContent = 'token for ' + origin + ' and assistant ' + assistant + ', from key ' + t.key_id +
    '\nexpires at ' + expires.toLocaleTimeString() + ' (' + t.expires_at + '), in ' +
    Math.round((expires.getTime() - Date.now()) / 1000) + ' s';
  return true;
};
// fresh reports whether the token can serve a call now: for the assistant
// asked for, and not about to expire.
const fresh = () => token !== null && token.assistant === $('assistant').value.trim() &&
  token.expires.getTime() - Date.now() > 10000;
$('get-token').onclick = async () => {
  try {
    await getToken();
  } catch (e) {
    $('token-info').textContent = 'no token: ' + e;
  }
};
$('go').onclick = async () => {
  const out = $('out');
  try {
    // A public key pasted in wins; otherwise the token, a new one when
    // there is none, it is for another assistant, or it is expiring.
    let credential = $('key').value.trim();
    if (credential === '') {
      if (!fresh() && !(await getToken())) {
        out.textContent = 'no token to call with: see the answer of /demo/token above';
        return;
      }
      credential = token.value;
    }
    const res = await fetch($('base').value + '/call/web', {
      method: 'POST',
      headers: {'Authorization': 'Bearer ' + credential, 'Content-Type': 'application/json'},
      body: JSON.stringify({assistant_id: $('assistant').value.trim()}),
    });
    out.textContent = describe(res, await res.text());
  } catch (e) {
    out.textContent = 'blocked: ' + e;
  }
};
