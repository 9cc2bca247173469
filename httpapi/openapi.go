package httpapi

import (
	"bytes"
	_ "embed" // the OpenAPI document
	"encoding/json"
	"net/http"
	"strconv"
)

// The OpenAPI document
//
// openapi.json, embedded in the package, is an OpenAPI 3.1 document of
// the REST handler: every route, request body, answer (the envelope,
// status codes and headers, including the middleware's 400, 401, 403,
// 429 and 503) and the security schemes (Authorization: Bearer and
// X-API-Key). The package's tests validate every answer they get against
// it, so it describes the handler as it behaves.
//
// The handler serves it at GET {prefix}/api_keys/openapi.json, with
// "servers" set to the Prefix. Behind the middleware that route needs a
// key like the others (api_keys:read, by RequiredScopes); to publish the
// document without one, mount Spec outside the middleware, as with JWKS:
//
//	mux.Handle("GET /api_keys/openapi.json", httpapi.Spec(""))
//	mux.Handle("/api_keys/", mw.Protect(middleware.Route{Private: true, Scopes: httpapi.RequiredScopes}, rest))

//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI 3.1 document of the REST handler, as JSON,
// with paths at /api_keys and no "servers" (so relative to the root). It
// returns a new copy on each call.
func OpenAPI() []byte { return bytes.Clone(openAPIDoc) }

// Spec returns a handler serving the OpenAPI document, with "servers"
// set to prefix (the handler's Config.Prefix, such as "/v1"; "" for
// none). It answers GET and HEAD (405 otherwise) with Content-Type
// application/json and Cache-Control: public, max-age=300, reads nothing
// else from the request and needs no authentication. Spec panics when
// prefix is not one New accepts.
func Spec(prefix string) http.Handler {
	if !validPrefix(prefix) {
		panic("httpapi: Spec: Prefix " + strconv.Quote(prefix) + " must start with / and not end with one")
	}
	return &specHandler{body: specFor(prefix)}
}

// specFor returns the document with servers set to prefix.
func specFor(prefix string) []byte {
	if prefix == "" {
		return OpenAPI()
	}
	servers, _ := json.Marshal([]map[string]string{{"url": prefix}}) // strings always marshal
	// The document is a JSON object without "servers": add the member first.
	i := bytes.IndexByte(openAPIDoc, '{')
	var b bytes.Buffer
	b.Write(openAPIDoc[:i+1])
	b.WriteString(`"servers":`)
	b.Write(servers)
	b.WriteByte(',')
	b.Write(openAPIDoc[i+1:])
	return b.Bytes()
}

type specHandler struct{ body []byte }

func (s *specHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, specAllow)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(s.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(s.body)
	}
}

// specAllow is the Allow header of {prefix}/api_keys/openapi.json.
var specAllow = []string{"GET", "HEAD"}
