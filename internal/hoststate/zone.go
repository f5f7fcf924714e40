package hoststate

import (
	"os"
	"strings"
	"time"
)

// LocalZone returns the IANA name of this machine's time zone ($TZ, else
// the target of /etc/localtime), or "UTC" when it has none that loads.
func LocalZone() string {
	loads := func(name string) bool {
		_, err := time.LoadLocation(name)
		return name != "" && name != "Local" && err == nil
	}
	if tz := strings.TrimPrefix(os.Getenv("TZ"), ":"); loads(tz) {
		return tz
	}
	if target, err := os.Readlink("/etc/localtime"); err == nil {
		if _, name, ok := strings.Cut(target, "zoneinfo/"); ok && loads(name) {
			return name
		}
	}
	return "UTC"
}
