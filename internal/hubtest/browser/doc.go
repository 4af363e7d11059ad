// Package browser drives eventhub's dashboard (transport/web) in a real
// headless Chromium over the DevTools protocol, with chromedp: a Browser
// with a fresh profile, Tabs that fail the test on a JavaScript exception
// or a CSP violation, evaluation of expressions in a page, waits on a
// JavaScript condition that leave a screenshot when they time out,
// screenshots of a page or of one element (kept in $EVENTHUB_ARTIFACTS when
// set, else in the test's artifact directory), and what the dashboard shows
// (its connection state, its event log).
//
// Chromium is Debian's, installed by .ci/install-deps; EVENTHUB_CHROMIUM
// names another. Without it New fails the test when CI is set and skips it
// otherwise, and under -short it skips.
//
// It is a package of its own, beside hubtest, so that only the tests that
// start a browser link chromedp. A Browser and its Tabs belong to the test
// that made them and are used from its goroutine.
package browser
