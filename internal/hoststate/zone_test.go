package hoststate

import "testing"

// TestLocalZone: $TZ when it names a zone that loads (a leading ':' as the
// C library allows); a name that does not load falls back to
// /etc/localtime's zone or UTC, never to a zone that does not load.
func TestLocalZone(t *testing.T) {
	t.Setenv("TZ", "Europe/Berlin")
	if got := LocalZone(); got != "Europe/Berlin" {
		t.Errorf("TZ=Europe/Berlin: %q", got)
	}
	t.Setenv("TZ", ":America/New_York")
	if got := LocalZone(); got != "America/New_York" {
		t.Errorf("TZ=:America/New_York: %q", got)
	}
	t.Setenv("TZ", "No/Such_Zone")
	if got := LocalZone(); got == "No/Such_Zone" || got == "" || got == "Local" {
		t.Errorf("TZ=No/Such_Zone: %q", got)
	}
}
