package redisstore_test

import (
	"context"
	"fmt"
	"log"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/keyward/apikeys"
	"github.com/keyward/apikeys/redisstore"
)

func ExampleNew() {
	mr, err := miniredis.Run() // a real service passes its Redis address
	if err != nil {
		log.Fatal(err)
	}
	defer mr.Close()

	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:                 []string{mr.Addr()},
		ContextTimeoutEnabled: true,
	})
	defer rdb.Close() // the caller owns the client

	store, err := redisstore.New(rdb, nil) // namespace "apikeys:"
	if err != nil {
		log.Fatal(err)
	}
	keys, err := apikeys.New(store, nil)
	if err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	nk, err := keys.Create(ctx, apikeys.CreateParams{
		Type:           apikeys.Public,
		Name:           "web widget",
		UserID:         "user-42",
		AllowedOrigins: []string{"https://app.example.com"},
	})
	if err != nil {
		log.Fatal(err)
	}
	_, err = keys.Authorize(ctx, nk.Value, apikeys.Request{Origin: "https://app.example.com"})
	fmt.Println("from the app:", err)
	_, err = keys.Authorize(ctx, nk.Value, apikeys.Request{Origin: "https://evil.example"})
	fmt.Println("from elsewhere:", err)
	// Output:
	// from the app: <nil>
	// from elsewhere: apikeys: origin not allowed for this key
}
