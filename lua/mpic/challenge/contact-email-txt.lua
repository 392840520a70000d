-- contact-email-txt (BR 3.2.2.4.14): the selected contact address equals, case-
-- insensitively, a whole TXT RR at _validation-contactemail.<name>.
return require("mpic.challenge._contact").txt {
  name = "contact-email-txt",
  br_section = "3.2.2.4.14",
  prefix = "_validation-contactemail",
  sunset = "2028-03-15",
  caa_method_label = "ca-tbr-14",
}
