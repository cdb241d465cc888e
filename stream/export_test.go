package stream

// AbortTransactions makes the App's exactly-once commits abort instead
// whenever fn returns true, to test the abort path.
func AbortTransactions(a *App, fn func() bool) { a.abortTxn = fn }
