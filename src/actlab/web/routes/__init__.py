"""The explorer's API, one router per view: activations, live training, stored runs."""
