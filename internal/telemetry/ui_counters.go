package telemetry

import (
	"context"
	"encoding/json"
	"sort"
	"time"
)

// soUsageCounter is USAGE_COUNTERS_SAVED_OBJECT_TYPE of the usage_collection
// plugin (server/usage_counters/saved_objects.ts), stored in
// .kibana_usage_counters; UI counters are its objects with source "ui".
const soUsageCounter = "usage-counter"

// UICounters reports the daily UI counter events of the APM apps, as
// Kibana's ui_counters collector does for every app (docs/behavioral.md).
// Its object is stack_stats.kibana.plugins.ui_counters.
func UICounters() Task {
	return Task{Name: "ui_counters", Plugin: PluginUICounters, Collect: collectUICounters}
}

// uiCounterEvent is one element of dailyEvents.
type uiCounterEvent struct {
	AppName       string
	EventName     string
	CounterType   string
	LastUpdatedAt string
	FromTimestamp string
	Total         int64
	lastUpdated   time.Time
}

func collectUICounters(ctx context.Context, env Env) (Fragment, error) {
	apps := make([]any, len(APMAppIDs))
	for i, a := range APMAppIDs {
		apps[i] = a
	}
	// Kibana filters on source: ui; domainId (the app name) is mapped too,
	// so the query keeps only the APM apps' counters.
	query := filter(term("type", soUsageCounter), term(soUsageCounter+".source", "ui"),
		map[string]any{"terms": map[string]any{soUsageCounter + ".domainId": apps}})
	merged := map[string]*uiCounterEvent{}
	err := scrollSavedObjects(ctx, env, "ui counters", query, []string{soUsageCounter, "updated_at"},
		func(id string, src json.RawMessage) error {
			var doc struct {
				UpdatedAt string `json:"updated_at"`
				Counter   struct {
					DomainID    string
					CounterName string
					CounterType string
					Count       *float64
				} `json:"usage-counter"`
			}
			if err := json.Unmarshal(src, &doc); err != nil {
				env.warn("saved object %s: %v", id, err)
				return nil
			}
			c := doc.Counter
			// transformRawCounter: a count that is not a number of at least 1 is no event.
			if c.Count == nil || *c.Count < 1 {
				return nil
			}
			// Kibana's moment(updated_at): a counter without updated_at is kept,
			// counted on today's (UTC) date, and gives no lastUpdatedAt.
			at := env.Now()
			if doc.UpdatedAt != "" {
				var err error
				if at, err = time.Parse(time.RFC3339Nano, doc.UpdatedAt); err != nil {
					env.warn("saved object %s: updated_at %q is not a date; skipped", id, doc.UpdatedAt)
					return nil
				}
			}
			from := at.UTC().Truncate(24 * time.Hour).Format(time.RFC3339)
			// mergeCounters: one event per app, type, name and UTC day, over
			// every space.
			key := c.DomainID + ":" + c.CounterType + ":" + c.CounterName + ":" + from
			ev, ok := merged[key]
			if !ok {
				ev = &uiCounterEvent{AppName: c.DomainID, EventName: c.CounterName, CounterType: c.CounterType, FromTimestamp: from}
				merged[key] = ev
			}
			ev.Total += int64(*c.Count)
			// lastUpdatedAt: the newest updated_at of the merged objects
			// (Kibana: the last one read, i.e. the oldest; docs/parity.md).
			if doc.UpdatedAt != "" && (ev.LastUpdatedAt == "" || at.After(ev.lastUpdated)) {
				ev.LastUpdatedAt, ev.lastUpdated = doc.UpdatedAt, at
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	events := make([]*uiCounterEvent, 0, len(merged))
	for _, ev := range merged {
		events = append(events, ev)
	}
	sort.Slice(events, func(i, j int) bool {
		a, b := events[i], events[j]
		if a.AppName != b.AppName {
			return a.AppName < b.AppName
		}
		if a.EventName != b.EventName {
			return a.EventName < b.EventName
		}
		if a.CounterType != b.CounterType {
			return a.CounterType < b.CounterType
		}
		return a.FromTimestamp < b.FromTimestamp
	})
	out := make([]any, len(events))
	for i, ev := range events {
		m := map[string]any{"appName": ev.AppName, "eventName": ev.EventName, "counterType": ev.CounterType,
			"fromTimestamp": ev.FromTimestamp, "total": ev.Total}
		if ev.LastUpdatedAt != "" {
			m["lastUpdatedAt"] = ev.LastUpdatedAt // JSON.stringify leaves an undefined one out
		}
		out[i] = m
	}
	return Fragment{"dailyEvents": out}, nil
}
