package worker

// Exported for the external tests (package worker_test).
var (
	ConfigForTests  = configForTests
	BreakerForTests = breakerForTests
	KeysForTests    = keysForTests
)
