-- contact-phone-txt (BR 3.2.2.4.16): the selected phone number equals, case-
-- insensitively, a whole TXT RR at _validation-contactphone.<name>.
return require("mpic.challenge._contact").txt {
  name = "contact-phone-txt",
  br_section = "3.2.2.4.16",
  prefix = "_validation-contactphone",
  sunset = "2027-03-15",
  caa_method_label = "ca-tbr-16",
}
