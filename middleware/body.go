package middleware

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ErrBodyTooLarge is returned by PeekBody for a body over its limit.
var ErrBodyTooLarge = errors.New("request body too large")

// PeekBody reads r's body, at most limit bytes, and puts it back so the
// handler can read it again. Config.Resource functions use it to find the
// assistant in a JSON body.
func PeekBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("reading request body: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, limit)
	}
	return body, nil
}
