package jobs

import (
	"errors"
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
		{"ok", `{"run_id":"sched-20261126T120000Z","task":"cloud"}`, CollectPayload{"sched-20261126T120000Z", "cloud"}, ""},
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
	c, err := NewCollect(CollectPayload{RunID: "r1", Task: "cloud"}, Options{MaxRetry: 2, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if c.Type() != TypeCollect {
		t.Errorf("type %s", c.Type())
	}
	if got, err := DecodeCollect(c.Payload()); err != nil || got.Task != "cloud" {
		t.Errorf("round trip: %+v %v", got, err)
	}
	if _, err := NewFinalize(RunPayload{RunID: "r1", Reason: "later"}, time.Time{}); !errors.Is(err, ErrBadPayload) {
		t.Errorf("bad reason accepted: %v", err)
	}
	if _, err := NewUpload(RunPayload{RunID: ""}); !errors.Is(err, ErrBadPayload) {
		t.Errorf("empty run id accepted: %v", err)
	}
	if got := CollectID("r1", "cloud"); got != "collect:r1:cloud" {
		t.Errorf("collect id %s", got)
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
