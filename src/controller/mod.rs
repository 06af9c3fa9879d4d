//! The controller: kube-runtime wiring of observe → decide → act → status. The only layer
//! that reads the clock and talks to the API server on behalf of Rollouts.
