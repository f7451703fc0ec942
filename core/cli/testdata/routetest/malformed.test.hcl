test "typos" {
  call {
    tpye = "V"
  }
  device "console" {
    tokn = "x"
  }
  expect {
    status = "acepted"
    routes = "all"
    notifier "desk" {
      role     = "notifier"
      delivers = "yes"
      devices  = -1
      payload  = "video"
    }
    expected = true
  }
}

test "no expectation" {
  call { type = "V" }
}

test "two calls" {
  call { type = "V" }
  call {
    extra = { token = "secret", to_user_id = "2809" }
  }
  expect {}
}

test "typos" {
  expect {}
}

tset "misspelt block" {
}

test " " {
  expect {}
}
