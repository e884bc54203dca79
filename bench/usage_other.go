//go:build !linux

package bench

// resetPeakRSS cannot reset the peak outside Linux: the peak is the process's so far.
func resetPeakRSS() bool { return false }

// peakRSS is the process's peak resident set in bytes (getrusage's maxrss).
func peakRSS() int64 { return maxRSS() }

// loadAverage is unknown here.
func loadAverage() string { return "" }

// currentRSS is unknown here.
func currentRSS() int64 { return 0 }
