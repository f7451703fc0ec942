server {
  listen = "0.0.0.0:20200"
}

servers {
  listen = ":8080"
}
