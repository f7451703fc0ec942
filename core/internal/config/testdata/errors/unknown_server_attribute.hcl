server {
  listen      = "0.0.0.0:20200"
  notify_pth  = "/cb"
}
