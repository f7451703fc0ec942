server
{
  listen = "127.0.0.1:20200"
}
