-- contact-email-caa (BR 3.2.2.4.13): the selected address equals a contactemail
-- property of the relevant CAA RRset (climbing from [{prefix}.]{target}).
return require("mpic.challenge._contact").caa {
  name = "contact-email-caa",
  br_section = "3.2.2.4.13",
  tag = "contactemail",
  sunset = "2028-03-15",
  caa_method_label = "ca-tbr-13",
}
