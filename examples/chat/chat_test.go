package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testTimeout bounds every blocking call a test makes.
const testTimeout = 20 * time.Second

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", 10, func(url string) { urls <- url }) }()
	var base string
	select {
	case base = <-urls:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	for path, want := range map[string]string{"": "Tether chat", "chat/rt/tether.js": "Tether"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Errorf("GET /%s: %d, body without %q", path, resp.StatusCode, want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run after cancel: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("run did not return after cancel")
	}
}
