server {
  listen = "127.0.0.1:20200"

directory "embedded" {
  path = "ringside.db"
}
