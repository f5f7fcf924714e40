package backup

// SetChunkHook installs f as the hook readFile calls after each chunk (see
// testHookChunk) until the returned function removes it.
func SetChunkHook(f func(path string, attempt int, end uint64)) (remove func()) {
	testHookChunk = f
	return func() { testHookChunk = nil }
}

// SetListHook installs f as the hook the walk calls after listing each
// directory (see testHookListed) until the returned function removes it.
func SetListHook(f func(path string)) (remove func()) {
	testHookListed = f
	return func() { testHookListed = nil }
}
