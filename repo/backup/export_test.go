package backup

// SetChunkHook installs f as the hook readFile calls after each chunk (see
// testHookChunk) until the returned function removes it.
func SetChunkHook(f func(path string, attempt int, end uint64)) (remove func()) {
	testHookChunk = f
	return func() { testHookChunk = nil }
}
