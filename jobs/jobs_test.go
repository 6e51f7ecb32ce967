package jobs

import (
	"errors"

	"github.com/apmtel/apmtel/internal/config"
	"strings"
	"testing"
	"time"
)

func TestDecodeCollect(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    CollectPayload
		wantErr string
	}{
		{"ok", `{"run_id":"sched-20261126T120000Z","task":"cloud"}`, CollectPayload{RunID: "sched-20261126T120000Z", Task: "cloud"}, ""},
		{"with source", `{"source":"prod-eu","run_id":"r1","task":"cloud"}`, CollectPayload{Source: "prod-eu", RunID: "r1", Task: "cloud"}, ""},
		{"bad source", `{"source":"Prod{x}","run_id":"r1","task":"cloud"}`, CollectPayload{}, "invalid source name"},
		{"garbage", `\x00\x01garbage`, CollectPayload{}, "invalid character"},
		{"unknown field", `{"run_id":"r1","task":"cloud","x":1}`, CollectPayload{}, `unknown field "x"`},
		{"missing task", `{"run_id":"r1"}`, CollectPayload{}, "task is empty"},
		{"bad run id", `{"run_id":"a{b}","task":"cloud"}`, CollectPayload{}, "invalid run id"},
		{"trailing", `{"run_id":"r1","task":"cloud"}{}`, CollectPayload{}, "trailing data"},
		{"oversized", `{"run_id":"r1","task":"` + strings.Repeat("a", MaxPayloadBytes) + `"}`, CollectPayload{}, "exceeds the limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeCollect([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrBadPayload) {
					t.Fatalf("err = %v, want %q wrapping ErrBadPayload", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
}

func TestConstructors(t *testing.T) {
	tm := config.Default().Timing()
	c, err := NewCollect(CollectPayload{RunID: "r1", Task: "cloud"}, tm)
	if err != nil {
		t.Fatal(err)
	}
	if c.Type() != TypeCollect {
		t.Errorf("type %s", c.Type())
	}
	if got, err := DecodeCollect(c.Payload()); err != nil || got.Task != "cloud" {
		t.Errorf("round trip: %+v %v", got, err)
	}
	if _, err := NewFinalize(RunPayload{RunID: "r1", Reason: "later"}, time.Time{}, tm); !errors.Is(err, ErrBadPayload) {
		t.Errorf("bad reason accepted: %v", err)
	}
	if _, err := NewUpload(RunPayload{RunID: ""}, 0, tm); !errors.Is(err, ErrBadPayload) {
		t.Errorf("empty run id accepted: %v", err)
	}
	for _, tc := range []struct{ got, want string }{
		{CollectID("", "r1", "cloud"), "collect:default:r1:cloud"},
		{CollectID("prod", "r1", "cloud"), "collect:prod:r1:cloud"},
		{FinalizeID("", "r1", ReasonDeadline), "finalize:default:r1:deadline"},
		{UploadID("", "r1"), "upload:default:r1"},
	} {
		if tc.got != tc.want {
			t.Errorf("id %s, want %s", tc.got, tc.want)
		}
	}
	if _, err := NewUpload(RunPayload{RunID: "r1"}, 42, tm); err != nil {
		t.Errorf("re-send upload: %v", err)
	}
}

func FuzzDecodeCollect(f *testing.F) {
	f.Add([]byte(`{"run_id":"r1","task":"cloud"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeCollect(b)
		if err != nil {
			if !errors.Is(err, ErrBadPayload) {
				t.Fatalf("error does not wrap ErrBadPayload: %v", err)
			}
			return
		}
		if p.Task == "" || p.RunID == "" {
			t.Fatalf("accepted incomplete payload %+v", p)
		}
	})
}
