package collect

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/apmtel/apmtel/internal/run"
)

// identityLookback is how many earlier runs are searched for the last
// known identity of the cluster.
const identityLookback = 20

// identityWarning returns the report's warning for a run whose source
// answered with another cluster_uuid than the cluster's previous run that
// knew one ("" when the same, or nothing to compare): a URL that now
// reaches another cluster (a DNS change, a restored snapshot, a copied
// entry in the clusters file) must not pass silently, since its documents
// would continue another cluster's series.
func identityWarning(ctx context.Context, runs *run.Store, r run.Run) (string, error) {
	uuid := clusterUUID(r.SourceInfo)
	if uuid == "" {
		return "", nil
	}
	prev, err := runs.List(ctx, identityLookback)
	if err != nil {
		return "", err
	}
	for _, p := range prev {
		if p.ID == r.ID || !p.CreatedAt.Before(r.CreatedAt) {
			continue
		}
		before := clusterUUID(p.SourceInfo)
		if before == "" {
			continue
		}
		if before != uuid {
			return fmt.Sprintf("source identity changed: the cluster answered as cluster_uuid %s, its previous run %s as %s", uuid, p.ID, before), nil
		}
		return "", nil
	}
	return "", nil
}

func clusterUUID(info json.RawMessage) string {
	var s struct {
		UUID string `json:"cluster_uuid"`
	}
	if len(info) == 0 || json.Unmarshal(info, &s) != nil {
		return ""
	}
	return s.UUID
}
