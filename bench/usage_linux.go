//go:build linux

package bench

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
)

// resetPeakRSS starts a new peak-RSS window (Linux 4.0+: writing 5 to clear_refs resets
// VmHWM to the current RSS). It reports false where that is refused; the peak is then the
// process's since it started.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// peakRSS is the process's peak resident set in bytes since the last reset: VmHWM, else
// getrusage's maxrss.
func peakRSS() int64 {
	if b, ok := procStatusBytes("VmHWM:"); ok {
		return b
	}
	return maxRSS()
}

// currentRSS is the process's resident set in bytes now (VmRSS), 0 when unknown.
func currentRSS() int64 {
	b, _ := procStatusBytes("VmRSS:")
	return b
}

// procStatusBytes reads one "<field> <n> kB" line of /proc/self/status, in bytes.
func procStatusBytes(field string) (int64, bool) {
	f, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(f))
	for sc.Scan() {
		if rest, ok := bytes.CutPrefix(sc.Bytes(), []byte(field)); ok {
			kb, err := strconv.ParseInt(string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte("kB")))), 10, 64)
			return kb * 1024, err == nil
		}
	}
	return 0, false
}

// loadAverage is the system's 1, 5 and 15 minute load averages, for judging how busy the
// machine was: "" when unknown.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := bytes.Fields(b)
	if len(f) < 3 {
		return ""
	}
	return string(bytes.Join(f[:3], []byte(" ")))
}
