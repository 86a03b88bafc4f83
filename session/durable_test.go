package session_test

import (
	"fmt"
	"net/http"
	"reflect"
	"testing"

	"github.com/tetherkit/tether/session"
)

// TestRequestInfoStored checks what a session taken over finds of its
// negotiate data: Header and RemoteAddr, and Auth when it is a string or
// []byte.
func TestRequestInfoStored(t *testing.T) {
	h := http.Header{"Authorization": {"Bearer x"}, "X-Two": {"a", "b"}}
	for _, tc := range []struct {
		auth, want any
	}{
		{nil, nil},
		{"alice", "alice"},
		{"", ""},
		{[]byte{1, 2}, []byte{1, 2}},
		{struct{ User string }{"bob"}, nil},
	} {
		t.Run(fmt.Sprintf("%T", tc.auth), func(t *testing.T) {
			in := session.RequestInfo{Header: h, RemoteAddr: "10.0.0.1:5", Auth: tc.auth}
			data, err := in.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var out session.RequestInfo
			if err := out.UnmarshalBinary(data); err != nil {
				t.Fatal(err)
			}
			want := in
			want.Auth = tc.want
			if !reflect.DeepEqual(out, want) {
				t.Errorf("restored %+v, want %+v", out, want)
			}
		})
	}
	var out session.RequestInfo
	if err := out.UnmarshalBinary([]byte("{corrupt")); err == nil {
		t.Error("UnmarshalBinary of corrupt data = nil, want an error")
	}
}
