server {
  listen = "0.0.0.0:20200"
}

server {
  listen = "0.0.0.0:20300"
}
