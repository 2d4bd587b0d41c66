"""Praise and complaints told as events: training rows for what happened, not what was felt.

Why: people often praise or complain by telling what happened ("the courier phoned when he
was ten minutes away", "the flight was cancelled by text an hour before boarding"), with
no opinion word for VADER to read and nothing like the rated review snippets the learnt
head was fitted on. Such text sat near 0 and leaned negative (a story about a service
usually mentions a problem: a delay, a theft, an illness), so praise told this way was
mostly called a complaint. These sentences, written for this module and kept apart from
every evaluation file, are training rows of the learnt head (``head.py``; fitted by
``bench/train_sentiment_head.py`` with the prototype bank, each hand-written row weighted
20 rated ones). Each polarity covers the same services, so that what the head learns is
the outcome, not the topic: travel, deliveries, banks and utilities, clinics, schools and
courses, apps and IT, shops and trades, hotels and restaurants, public services, work mail.

They are not in the prototype bank itself: added there as well, they gained nothing on the
development sets and cost two sentences of the domains tune half and 0.003 on a held-out
fold of the rated corpus (docs/benchmarks.md).
"""

from __future__ import annotations

POSITIVE_EVENTS: tuple[str, ...] = (
    # travel
    "The crew held the plane for the passengers from the late connection.",
    "They moved us to an earlier train at no extra charge.",
    "The check-in agent printed our boarding passes and walked us to the gate.",
    "Our luggage was waiting at the hotel when we arrived.",
    "The captain explained the hold-up and handed out water to everyone.",
    "The station staff carried my pram down the stairs.",
    "The hire car was ready and the keys were at the desk.",
    "We landed twenty minutes ahead of schedule.",
    # deliveries and post
    "The parcel came the next morning, a day before the estimate.",
    "The courier sent a photo of where he left the box.",
    "The postman brought the letter up to the flat because it needed a signature.",
    "They delivered the washing machine and took the old one away.",
    "The missing item was sent out again the same afternoon.",
    "The driver phoned when he was ten minutes away.",
    # banks, insurance and utilities
    "The bank moved my payment date so it lands after payday.",
    "The insurer sent a loss adjuster round the day after the storm.",
    "The adviser called back at the exact time she promised.",
    "They cancelled the late payment charge when I explained.",
    "The energy company lowered my bill after the meter reading.",
    "The broadband engineer had us back online within the hour.",
    "The claims handler kept me informed at every stage.",
    # clinics and care
    "The doctor rang with the scan results the following morning.",
    "The nurse held my hand during the injection.",
    "The pharmacist spotted the clash between my two medicines.",
    "The surgeon came by after the operation to explain how it went.",
    "They fitted me in on the day my tooth cracked.",
    "The midwife visited every day for the first week.",
    # schools and courses
    "The teacher set up extra lessons before the exam.",
    "The head teacher answered my email the same evening.",
    "The course tutor answered questions in the forum every day.",
    "My daughter came home reading her first words.",
    "The instructor let me retake the test for free.",
    "Every student got written feedback on their project.",
    # apps, software and IT
    "The app remembered my basket when I came back a week later.",
    "IT restored my deleted folder from the backup within the hour.",
    "Support answered my ticket in ten minutes and solved it.",
    "The new version opens in half the time.",
    "It backed up my photos automatically before the phone died.",
    "The export went straight into the spreadsheet with every column in place.",
    "The update added the dark mode people asked for.",
    # shops, trades, hotels and restaurants
    "The shop swapped the broken kettle for a new one on the spot.",
    "The optician adjusted my frames for free while I waited.",
    "The waiter noticed my allergy on the booking and warned the kitchen.",
    "The chef made a separate dish for our son.",
    "The hotel left a cot and toys in the room for our baby.",
    "Reception let us keep the room until the evening.",
    "The garage did the service while I waited and washed the car too.",
    "The electrician finished a day early and swept up.",
    "The hairdresser fitted me in after closing time.",
    "The cleaner moved the furniture to clean underneath.",
    # public services
    "The council collected the old mattress the day after I phoned.",
    "My passport came back in six days.",
    "The library held the book for me for an extra week.",
    "The clerk filled in the form with me and checked every line.",
    "The repairs team fixed the streetlight the same week.",
    "The firefighters stayed until the smoke had cleared and checked every room.",
    # work mail
    "The customer renewed for three more years.",
    "Your slides answered every question the board had.",
    "The tests all pass now and the release is on schedule.",
    "We hit the quarterly target two weeks early.",
    "The audit came back with no findings.",
    "Thanks to your call the supplier dropped the price.",
    "The new dashboard saves me a morning every week.",
    "The client has already recommended us to two other firms.",
    "Your summary got the proposal approved on the first pass.",
    "Orders doubled after the campaign.",
    "The outage was fixed before the office opened.",
)

NEGATIVE_EVENTS: tuple[str, ...] = (
    # travel
    "The flight was cancelled by text an hour before boarding.",
    "We were kept on the plane for two hours with no water.",
    "The train was cut to four carriages and people stood in the toilets.",
    "My bag arrived a week later with the lock forced open.",
    "The airline kept the fare and gave us a voucher instead.",
    "The hire car had a flat tyre and the desk had no other.",
    "The connecting bus left while we were still on the platform.",
    "The transfer never turned up and we paid for a taxi.",
    # deliveries and post
    "The courier marked it as refused although I was home all day.",
    "The parcel was left on the doorstep and was gone by evening.",
    "Three weeks later the order still says processing.",
    "They delivered someone else's shopping to my address.",
    "The table came with half the screws missing.",
    "The driver would not carry it past the front door.",
    # banks, insurance and utilities
    "The bank blocked my card abroad and the helpline was closed.",
    "The insurer rejected the claim over a form I was never sent.",
    "They took the payment twice and the refund takes ten working days.",
    "My direct debit went up without any letter.",
    "The broadband dropped every evening for a month.",
    "The energy company billed me for a flat I moved out of.",
    "I was transferred between four departments and then cut off.",
    # clinics and care
    "The hospital cancelled my operation on the morning itself.",
    "The results sat in the system for a month before anyone called.",
    "The pharmacy gave me the wrong strength of tablets.",
    "We were told to come back tomorrow after waiting all afternoon.",
    "The doctor prescribed something I had told him I was allergic to.",
    "The vet charged us for tests that were never done.",
    "The appointment line rings out every morning at eight.",
    # schools and courses
    "The teacher lost my son's coursework a week before the deadline.",
    "The school sent the letter about the trip the day after it happened.",
    "Half the lessons this term were taught by supply staff.",
    "The exam results were posted to the wrong address.",
    "The course materials were a year out of date.",
    "Our questions in the forum were never answered.",
    # apps, software and IT
    "The app charged my card after I had cancelled.",
    "Every update resets my settings.",
    "The page freezes when I press pay.",
    "The helpdesk closed my ticket without fixing anything.",
    "It deleted a week of work when it synced.",
    "The login code arrives after it has already expired.",
    "The new version removed the feature I used most.",
    # shops, trades, hotels and restaurants
    "The shop would not refund the heater that never heated.",
    "The dress I ordered came in a different colour.",
    "We waited forty minutes for our starters.",
    "The steak came out raw in the middle and went back twice.",
    "Our room was given to someone else and we were sent across town.",
    "The lift was out of order for our whole stay on the ninth floor.",
    "The mechanic charged twice the quote and the noise is still there.",
    "The builder took the deposit and stopped turning up.",
    "The hairdresser cut off far more than I asked.",
    "The cleaner left after an hour and charged for three.",
    # public services
    "The bins have not been collected for three weeks.",
    "My passport application came back for a signature they never asked for.",
    "The library fined me for a book I had returned.",
    "The form was rejected twice for the same reason.",
    "The pothole we reported in spring is still there.",
    "The ambulance took over an hour to arrive.",
    # work mail
    "The customer has moved to a competitor.",
    "The slides went to the client with the old prices.",
    "The tests fail on every branch since Monday.",
    "We are two months behind and over budget.",
    "The audit found the same gaps as last year.",
    "The supplier raised prices again without notice.",
    "Nobody updated the dashboard so the figures are from March.",
    "The client asked why they had to chase us three times.",
    "The proposal came back with the same objections.",
    "Orders dropped by a third after the price change.",
    "The outage lasted the whole morning and nobody sent an update.",
)
