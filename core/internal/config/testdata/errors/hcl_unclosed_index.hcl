route "all" {
  notify = ["ios"][0
}
