//go:build !unix

package bench

import "time"

// cpuTime is unknown here: CPU figures read 0.
func cpuTime() time.Duration { return 0 }

// maxRSS is unknown here: RSS figures read 0.
func maxRSS() int64 { return 0 }
