package run

// Field names of a run's Redis hash. Only this package names them.
const (
	fieldID            = "id"
	fieldSource        = "source"
	fieldTrigger       = "trigger"
	fieldKind          = "kind"
	fieldStatus        = "status"
	fieldCreatedAt     = "created_at"
	fieldDeadline      = "deadline"
	fieldTasks         = "tasks"
	fieldIndices       = "indices"
	fieldClosedAt      = "closed_at"
	fieldCloseReason   = "close_reason"
	fieldSealedAt      = "sealed_at"
	fieldReport        = "report"
	fieldUpload        = "upload"
	fieldUploadAttempt = "upload_attempt"
	fieldUploadMax     = "upload_max"
	fieldUploadError   = "upload_error"
	fieldUploadDetail  = "upload_detail"
	fieldUploadAt      = "upload_at"
	fieldUploadSince   = "upload_since"
	fieldSourceInfo    = "source_info"
	// fieldErrandPrefix + name holds an errand's entry (Errand as JSON).
	fieldErrandPrefix = "errand:"
)
