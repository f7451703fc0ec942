directory "embedded" {
  cache_users = 100000001
}
