package memstore_test

import (
	"context"
	"fmt"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/memstore"
)

// memstore is the store for tests and for single-process services: keys
// live in memory and are lost on restart.
func ExampleNew() {
	s := memstore.New()
	m, err := apikeys.New(s, nil)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	nk, err := m.Create(ctx, apikeys.CreateParams{Type: apikeys.Public, Name: "test", UserID: "u"})
	if err != nil {
		panic(err)
	}
	_, err = m.Authorize(ctx, nk.Value, apikeys.Request{})
	fmt.Println(s.Len(), err)
	// Output: 1 <nil>
}
