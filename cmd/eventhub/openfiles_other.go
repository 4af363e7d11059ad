//go:build !unix

package main

// raiseOpenFiles returns 0, no limit from open files: there is no
// open-file limit of the unix kind to raise or to count streams against
// (Windows bounds handles per process far above what a hub opens).
func raiseOpenFiles() int { return 0 } // 0: no bound
