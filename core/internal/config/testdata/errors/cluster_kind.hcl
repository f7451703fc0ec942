cluster "memcached" {
  addresses = ["127.0.0.1:11211"]
}
