package middleware

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
)

// ErrBodyTooLarge is returned by PeekBody for a body over its limit.
var ErrBodyTooLarge = errors.New("request body too large")

// PeekBody reads r's body, at most limit bytes (limit must be positive),
// and puts it back so the handler can read it again. Config.Resource
// functions use it to find the assistant in a JSON body. When the body is
// longer it returns ErrBodyTooLarge and still puts back the whole body,
// what was read followed by the rest, so nothing is lost.
func PeekBody(r *http.Request, limit int64) ([]byte, error) {
	if limit <= 0 || limit == math.MaxInt64 {
		return nil, fmt.Errorf("middleware: PeekBody: limit must be between 1 and %d", int64(math.MaxInt64-1))
	}
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	orig := r.Body
	body, err := io.ReadAll(io.LimitReader(orig, limit+1))
	if err != nil {
		orig.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
		return nil, fmt.Errorf("reading request body: %w", err)
	}
	if int64(len(body)) > limit {
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), orig), orig}
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, limit)
	}
	orig.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}
