package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apmtel/apmtel/internal/es"
	"github.com/apmtel/apmtel/internal/schema"
)

// appUsageFixture is a search answer of Kibana's saved-object indices at
// testNow (2026-11-26T12:00Z): totals of apm (main and one view), daily
// objects 2, 20, 60 and 100 days old, a ux daily without a viewId (main),
// a discover object (not an APM app), a view of an app without a main entry.
const appUsageFixture = `{"timed_out":false,"hits":{"total":{"value":9,"relation":"eq"},"hits":[
{"_id":"application_usage_totals:apm","_source":{"type":"application_usage_totals","updated_at":"2026-11-01T00:00:00.000Z","application_usage_totals":{"appId":"apm","viewId":"main","numberOfClicks":1000,"minutesOnScreen":500.5}}},
{"_id":"application_usage_totals:apm___services","_source":{"type":"application_usage_totals","updated_at":"2026-11-01T00:00:00.000Z","application_usage_totals":{"appId":"apm","viewId":"services","numberOfClicks":100,"minutesOnScreen":50}}},
{"_id":"application_usage_daily:apm:2026-11-24","_source":{"type":"application_usage_daily","application_usage_daily":{"appId":"apm","viewId":"main","timestamp":"2026-11-24T00:00:00.000Z","numberOfClicks":10,"minutesOnScreen":5}}},
{"_id":"application_usage_daily:apm:2026-11-06","_source":{"type":"application_usage_daily","application_usage_daily":{"appId":"apm","viewId":"main","timestamp":"2026-11-06T00:00:00.000Z","numberOfClicks":20,"minutesOnScreen":10}}},
{"_id":"application_usage_daily:apm:2026-09-27","_source":{"type":"application_usage_daily","application_usage_daily":{"appId":"apm","viewId":"main","timestamp":"2026-09-27T00:00:00.000Z","numberOfClicks":40,"minutesOnScreen":20}}},
{"_id":"application_usage_daily:apm:2026-08-18","_source":{"type":"application_usage_daily","application_usage_daily":{"appId":"apm","viewId":"main","timestamp":"2026-08-18T00:00:00.000Z","numberOfClicks":80,"minutesOnScreen":40}}},
{"_id":"application_usage_daily:apm:2026-11-24:services","_source":{"type":"application_usage_daily","application_usage_daily":{"appId":"apm","viewId":"services","timestamp":"2026-11-24T00:00:00.000Z","numberOfClicks":3,"minutesOnScreen":1.5}}},
{"_id":"application_usage_daily:ux:2026-11-25","_source":{"type":"application_usage_daily","application_usage_daily":{"appId":"ux","timestamp":"2026-11-25T00:00:00.000Z","numberOfClicks":7,"minutesOnScreen":2.25}}},
{"_id":"application_usage_daily:discover:2026-11-25","_source":{"type":"application_usage_daily","application_usage_daily":{"appId":"discover","viewId":"main","timestamp":"2026-11-25T00:00:00.000Z","numberOfClicks":9,"minutesOnScreen":9}}}
]}}`

// The expected values, summed by hand: apm main total 1000+10+20+40+80,
// 7 days 10, 30 days 10+20, 90 days 10+20+40 (the 100-day-old one only in
// the total); the services view 100+3; ux 7; discover left out.
const appUsageFixtureWant = `{
"apm":{"appId":"apm","viewId":"main","clicks_total":1150,"clicks_7_days":10,"clicks_30_days":30,"clicks_90_days":70,
 "minutes_on_screen_total":575.5,"minutes_on_screen_7_days":5,"minutes_on_screen_30_days":15,"minutes_on_screen_90_days":35,
 "views":[{"appId":"apm","viewId":"services","clicks_total":103,"clicks_7_days":3,"clicks_30_days":3,"clicks_90_days":3,
  "minutes_on_screen_total":51.5,"minutes_on_screen_7_days":1.5,"minutes_on_screen_30_days":1.5,"minutes_on_screen_90_days":1.5}]},
"ux":{"appId":"ux","viewId":"main","clicks_total":7,"clicks_7_days":7,"clicks_30_days":7,"clicks_90_days":7,
 "minutes_on_screen_total":2.25,"minutes_on_screen_7_days":2.25,"minutes_on_screen_30_days":2.25,"minutes_on_screen_90_days":2.25,"views":[]}}`

// uiCountersFixture: two spaces' objects of the same counter and day
// (merged), one of another day, a count of 0 (no event), a ux counter.
const uiCountersFixture = `{"timed_out":false,"hits":{"total":{"value":5,"relation":"eq"},"hits":[
{"_id":"usage-counter:apm:side_nav_dependency:click:ui:20261126","_source":{"updated_at":"2026-11-26T09:00:00.000Z","usage-counter":{"domainId":"apm","counterName":"side_nav_dependency","counterType":"click","source":"ui","count":4}}},
{"_id":"space-b:usage-counter:apm:side_nav_dependency:click:ui:20261126","_source":{"updated_at":"2026-11-26T11:30:00.000Z","usage-counter":{"domainId":"apm","counterName":"side_nav_dependency","counterType":"click","source":"ui","count":2}}},
{"_id":"usage-counter:apm:side_nav_dependency:click:ui:20261125","_source":{"updated_at":"2026-11-25T23:59:00.000Z","usage-counter":{"domainId":"apm","counterName":"side_nav_dependency","counterType":"click","source":"ui","count":5}}},
{"_id":"usage-counter:apm:service_map:loaded:ui:20261126","_source":{"updated_at":"2026-11-26T10:00:00.000Z","usage-counter":{"domainId":"apm","counterName":"service_map","counterType":"loaded","source":"ui","count":0}}},
{"_id":"usage-counter:ux:page_load:count:ui:20261126","_source":{"updated_at":"2026-11-26T08:00:00.000Z","usage-counter":{"domainId":"ux","counterName":"page_load","counterType":"count","source":"ui","count":9}}}
]}}`

const uiCountersFixtureWant = `{"dailyEvents":[
{"appName":"apm","eventName":"side_nav_dependency","counterType":"click","lastUpdatedAt":"2026-11-25T23:59:00.000Z","fromTimestamp":"2026-11-25T00:00:00Z","total":5},
{"appName":"apm","eventName":"side_nav_dependency","counterType":"click","lastUpdatedAt":"2026-11-26T11:30:00.000Z","fromTimestamp":"2026-11-26T00:00:00Z","total":6},
{"appName":"ux","eventName":"page_load","counterType":"count","lastUpdatedAt":"2026-11-26T08:00:00.000Z","fromTimestamp":"2026-11-26T00:00:00Z","total":9}]}`

func TestBehavioralTasksArePluginsAfterTheDataTasks(t *testing.T) {
	names := Default().Names()
	if got := strings.Join(names[len(names)-2:], ","); got != "application_usage,ui_counters" {
		t.Errorf("last tasks = %s", got)
	}
	for i, task := range Default().All() {
		want := PluginAPM
		switch task.Name {
		case "application_usage":
			want = PluginApplicationUsage
		case "ui_counters":
			want = PluginUICounters
		}
		if task.PluginName() != want || (i < 19) != (want == PluginAPM) {
			t.Errorf("task %d %s: plugin %s", i, task.Name, task.PluginName())
		}
	}
	if Default().PluginOf("gone_task") != PluginAPM {
		t.Error("an unknown task name must count as the APM object's")
	}
	if strings.Join(APMAppIDs, ",") != strings.Join(schema.BehavioralApps, ",") {
		t.Errorf("APMAppIDs %v, schema.BehavioralApps %v", APMAppIDs, schema.BehavioralApps)
	}
}

// The scroll reads every page, clears the scroll, and a read that ends
// short of the total fails the task rather than send low counts.
func TestBehavioralScrollPages(t *testing.T) {
	hit := func(i int) string {
		return fmt.Sprintf(`{"_id":"usage-counter:apm:e%d:click:ui:20261126","_source":{"updated_at":"2026-11-26T09:00:00.000Z","usage-counter":{"domainId":"apm","counterName":"e%d","counterType":"click","source":"ui","count":1}}}`, i, i)
	}
	page := func(from, n, total int) string {
		hs := make([]string, n)
		for i := range hs {
			hs[i] = hit(from + i)
		}
		return fmt.Sprintf(`{"_scroll_id":"s1","timed_out":false,"hits":{"total":{"value":%d},"hits":[%s]}}`, total, strings.Join(hs, ","))
	}
	for _, tc := range []struct {
		name    string
		second  int // hits on the second page
		total   int
		wantErr string
	}{
		{"complete", 5, savedObjectsPageSize + 5, ""},
		{"lost page", 0, savedObjectsPageSize + 5, "read 1000 of 1005"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{answer: func(i int, r es.Request) (string, error) {
				switch {
				case r.Method == "DELETE":
					return `{"succeeded":true}`, nil
				case i == 0:
					return page(0, savedObjectsPageSize, tc.total), nil
				}
				return page(savedObjectsPageSize, tc.second, tc.total), nil
			}}
			f, err := UICounters().Collect(context.Background(), testEnv(rec))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if n := len(f["dailyEvents"].([]any)); n != tc.total {
				t.Errorf("%d events, want %d", n, tc.total)
			}
			last := rec.reqs[len(rec.reqs)-1]
			if last.Method != "DELETE" || last.Endpoint != "_search/scroll" {
				t.Errorf("scroll not cleared: last request %s %s", last.Method, last.Path())
			}
			if rec.reqs[1].Endpoint != "_search/scroll" || !strings.Contains(asJSON(t, rec.reqs[1].Body), `"scroll_id":"s1"`) {
				t.Errorf("second request %s %v", rec.reqs[1].Path(), rec.reqs[1].Body)
			}
		})
	}
}

// Bad objects are skipped with a warning, never a failed task: a count
// that is not a number, an unreadable date, attributes of the wrong type.
func TestBehavioralBadObjects(t *testing.T) {
	var warnings []string
	env := testEnv(&recorder{answer: always(`{"hits":{"total":{"value":3},"hits":[
{"_id":"a","_source":{"updated_at":"yesterday","usage-counter":{"domainId":"apm","counterName":"x","counterType":"click","count":3}}},
{"_id":"b","_source":{"updated_at":"2026-11-26T09:00:00.000Z","usage-counter":{"domainId":"apm","counterName":"y","counterType":"click","count":"3"}}},
{"_id":"c","_source":{"updated_at":"2026-11-26T09:00:00.000Z","usage-counter":{"domainId":"apm","counterName":"z","counterType":"click","count":2}}}]}}`)})
	env.Warn = func(m string) { warnings = append(warnings, m) }
	f, err := UICounters().Collect(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if got := asJSON(t, f); !strings.Contains(got, `"eventName":"z"`) || strings.Contains(got, `"x"`) || strings.Contains(got, `"y"`) {
		t.Errorf("fragment %s", got)
	}
	if len(warnings) != 2 || !strings.Contains(warnings[0], "saved object a") || !strings.Contains(warnings[1], "saved object b") {
		t.Errorf("warnings %q", warnings)
	}

	warnings = nil
	env = testEnv(&recorder{answer: always(`{"hits":{"total":{"value":2},"hits":[
{"_id":"d","_source":{"type":"application_usage_daily","application_usage_daily":{"appId":"apm","timestamp":"not a date","numberOfClicks":4,"minutesOnScreen":1}}},
{"_id":"e","_source":{"type":"application_usage_daily","application_usage_daily":{"appId":"apm","timestamp":"2026-11-26T00:00:00.000Z","numberOfClicks":"many"}}}]}}`)})
	env.Warn = func(m string) { warnings = append(warnings, m) }
	f, err = ApplicationUsage().Collect(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		APM map[string]any `json:"apm"`
	}
	if err := json.Unmarshal([]byte(asJSON(t, f)), &got); err != nil {
		t.Fatal(err)
	}
	if got.APM["clicks_total"] != 4.0 || got.APM["clicks_7_days"] != 0.0 {
		t.Errorf("an undated daily object counts in the total only: %v", got.APM)
	}
	if len(warnings) != 2 {
		t.Errorf("warnings %q", warnings)
	}
}

// Kibana's edge cases, decided (docs/parity.md): a daily object without a
// timestamp counts in every window (moment(undefined) is now); the windows
// start at now minus N days in UTC whatever the process's zone (Kibana: the
// server's local time); a UI counter without updated_at is kept on today's
// date and has no lastUpdatedAt.
func TestBehavioralKibanaEdgeCases(t *testing.T) {
	t.Run("daily object without timestamp", func(t *testing.T) {
		var warnings []string
		env := testEnv(&recorder{answer: always(`{"hits":{"total":{"value":4},"hits":[
{"_id":"a","_source":{"type":"application_usage_daily","application_usage_daily":{"appId":"apm","numberOfClicks":1,"minutesOnScreen":1}}},
{"_id":"b","_source":{"type":"application_usage_daily","application_usage_daily":{"appId":"apm","timestamp":null,"numberOfClicks":2,"minutesOnScreen":1}}},
{"_id":"c","_source":{"type":"application_usage_daily","application_usage_daily":{"appId":"apm","timestamp":"","numberOfClicks":4,"minutesOnScreen":1}}},
{"_id":"d","_source":{"type":"application_usage_daily","application_usage_daily":{"appId":"apm","timestamp":"2026-06-01T00:00:00.000Z","numberOfClicks":8,"minutesOnScreen":1}}}]}}`)})
		env.Warn = func(m string) { warnings = append(warnings, m) }
		f, err := ApplicationUsage().Collect(context.Background(), env)
		if err != nil {
			t.Fatal(err)
		}
		apm := f["apm"].(map[string]any)
		for k, want := range map[string]float64{"clicks_total": 15, "clicks_7_days": 3, "clicks_30_days": 3, "clicks_90_days": 3} {
			if apm[k] != want {
				t.Errorf("%s = %v, want %v", k, apm[k], want)
			}
		}
		if len(warnings) != 1 || !strings.Contains(warnings[0], "saved object c") {
			t.Errorf("warnings %q (only the unreadable timestamp warns)", warnings)
		}
	})

	t.Run("windows in UTC", func(t *testing.T) {
		ny, err := time.LoadLocation("America/New_York")
		if err != nil {
			t.Skipf("no time zone data: %v", err)
		}
		// Three days after the 2026 DST start: now minus 7 days is 16:00 UTC,
		// in New York's wall-clock time (Kibana on a server there) 17:00 UTC.
		now := time.Date(2026, 3, 11, 12, 0, 0, 0, ny)
		env := testEnv(&recorder{answer: always(`{"hits":{"total":{"value":1},"hits":[
{"_id":"a","_source":{"type":"application_usage_daily","application_usage_daily":{"appId":"apm","timestamp":"2026-03-04T16:30:00.000Z","numberOfClicks":1,"minutesOnScreen":1}}}]}}`)})
		env.Now = func() time.Time { return now }
		f, err := ApplicationUsage().Collect(context.Background(), env)
		if err != nil {
			t.Fatal(err)
		}
		if got := f["apm"].(map[string]any)["clicks_7_days"]; got != 1.0 {
			t.Errorf("clicks_7_days = %v: the 7-day window must start at now minus 7×24 h", got)
		}
	})

	t.Run("UI counter without updated_at", func(t *testing.T) {
		env := testEnv(&recorder{answer: always(`{"hits":{"total":{"value":3},"hits":[
{"_id":"a","_source":{"usage-counter":{"domainId":"apm","counterName":"x","counterType":"click","count":3}}},
{"_id":"b","_source":{"usage-counter":{"domainId":"apm","counterName":"y","counterType":"click","count":1}}},
{"_id":"c","_source":{"updated_at":"2026-11-26T09:00:00.000Z","usage-counter":{"domainId":"apm","counterName":"y","counterType":"click","count":2}}}]}}`)})
		f, err := UICounters().Collect(context.Background(), env)
		if err != nil {
			t.Fatal(err)
		}
		want := `[{"appName":"apm","counterType":"click","eventName":"x","fromTimestamp":"2026-11-26T00:00:00Z","total":3},` +
			`{"appName":"apm","counterType":"click","eventName":"y","fromTimestamp":"2026-11-26T00:00:00Z","lastUpdatedAt":"2026-11-26T09:00:00.000Z","total":3}]`
		if got := asJSON(t, f["dailyEvents"]); got != want {
			t.Errorf("dailyEvents\n got  %s\n want %s", got, want)
		}
	})
}
