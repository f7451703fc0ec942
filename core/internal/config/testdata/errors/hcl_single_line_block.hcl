server { listen = "127.0.0.1:20200"
  admin_listen = "127.0.0.1:20201"
}
