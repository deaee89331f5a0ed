/* test_golden.c -- `mtlab train --digits 17` prints, for every model family,
 * the very bits it printed before the families moved onto the shared blocks
 * (src/models/blocks.h): the expected text below is the output of the float
 * binary of commit 8c98a1c.  A port of a family, or a change to a layer
 * kernel, that moves a single bit of a loss fails here.
 *
 * Two settings per family: a small one whose widths exercise both the
 * vectorised blocks and the scalar tails of the kernels (hidden 9-11,
 * 5 experts; 90 test rows evaluated in chunks of 32, 32, 26), and the
 * paper's standard sizes (d 100, 8 experts x 16, towers 8, bottom 113 / 16,
 * batch 128).  The first output line (the echo of the settings) is not
 * compared: the numbers are the contract. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define SMALL                                                                                      \
    "--tasks", "3", "--dim", "12", "--train", "600", "--val", "70", "--test", "90", "--experts",   \
        "5", "--expert-hidden", "10", "--bottom-hidden", "11", "--tower-hidden", "9", "--batch",   \
        "32", "--steps", "60", "--eval-every", "25", "--lr", "0.01", "--seed", "7", "--digits",    \
        "17", NULL
#define STANDARD                                                                                   \
    "--train", "1000", "--val", "200", "--test", "300", "--steps", "40", "--eval-every", "20",     \
        "--seed", "3", "--digits", "17", NULL

static const struct {
    const char *args[40];
    const char *expect; /* stdout after its first line */
} golden[] = {
    {{"train", "--model", "single", SMALL},
     "  step    train/t1    train/t2    train/t3 train/total      val/t1      val/t2      val/t3   "
     "val/total     test/t1     test/t2     test/t3  test/total\n"
     "    25 1.928203795704871 1.9836272397538592 1.9013532151079835 5.8131842505667137 "
     "1.7330990328805203 2.0010782748940219 1.9513634482090907 5.6855407559836326 "
     "1.6299821110413999 1.5850551355794804 1.9188516949807906 5.1338889416016711\n"
     "    50 1.4405338470539788 1.6788302669078172 1.6388013099340575 4.7581654238958526 "
     "1.1150742018333923 1.6692279861941344 1.8293093157146842 4.6136115037422112 "
     "1.2641111940338363 1.1373754877926192 1.6792685609199762 4.0807552427464318\n"
     "    60 1.0246910299713208 1.4078381145677232 1.3337415523174294 3.7662706968564734 "
     "0.85819695026049791 1.4450552587557366 1.7443032807155976 4.047555489731832 "
     "0.99647710957428093 1.0227402991293593 1.5880449610883089 3.607262369791949\n"
     "\n"
     "parameters: 783\n"
     "final test loss:  t1 0.99647710957428093  t2 1.0227402991293593  t3 1.5880449610883089  "
     "total 3.607262369791949\n"
     "predicting the training mean:  t1 1.6852023790697197  t2 1.7936678651702374  t3 "
     "1.9807371617646263  total 5.4596074060045829\n"
     "label Pearson correlation (training set):  t1-t2 0.1418  t1-t3 0.1527  t2-t3 0.1190\n"},
    {{"train", "--model", "single", STANDARD},
     "  step    train/t1    train/t2 train/total      val/t1      val/t2   val/total     test/t1   "
     "  test/t2  test/total\n"
     "    20 2.6127608394580455 3.2187679555116993 5.8315287949697439 2.3981739879873252 "
     "3.314294890422794 5.7124688784101192 2.3345035619309522 2.9793894268634658 "
     "5.313892988794418\n"
     "    40 2.1589608704592052 2.3866643932752432 4.5456252637344488 2.2166221095911789 "
     "2.6805264117417908 4.8971485213329693 2.198941487346207 2.4933691854512143 "
     "4.6923106727974213\n"
     "\n"
     "parameters: 3522\n"
     "final test loss:  t1 2.198941487346207  t2 2.4933691854512143  total 4.6923106727974213\n"
     "predicting the training mean:  t1 1.8663334020651783  t2 2.0160587331211  total "
     "3.8823921351862785\n"
     "label Pearson correlation (training set):  t1-t2 0.1654\n"},
    {{"train", "--model", "shared_bottom", SMALL},
     "  step    train/t1    train/t2    train/t3 train/total      val/t1      val/t2      val/t3   "
     "val/total     test/t1     test/t2     test/t3  test/total\n"
     "    25 1.969449305794958 1.8683195542810542 1.7700686203754858 5.607837480451499 "
     "1.6901943294899162 1.8804706695160511 1.9147603493238023 5.4854253483297697 "
     "1.5577190405796253 1.5004323193389741 1.8934012939317941 4.9515526538503938\n"
     "    50 1.6362881190010461 1.4562207348604128 1.5827882956787034 4.6752971495401612 "
     "1.4119975071438067 1.4829131792519272 1.7008367050670348 4.5957473914627691 "
     "1.4118092247844396 0.92584736435011794 1.5792620607478669 3.9169186498824242\n"
     "    60 1.3742101123382056 1.4209064313305682 1.3459215870465957 4.1410381307153683 "
     "1.3121200762251721 1.3670957575492606 1.5934147455921204 4.2726305793665533 "
     "1.3338767520803614 0.80718204829242124 1.5457814972548836 3.6868402976276657\n"
     "\n"
     "parameters: 497\n"
     "final test loss:  t1 1.3338767520803614  t2 0.80718204829242124  t3 1.5457814972548836  "
     "total 3.6868402976276657\n"
     "predicting the training mean:  t1 1.6852023790697197  t2 1.7936678651702374  t3 "
     "1.9807371617646263  total 5.4596074060045829\n"
     "label Pearson correlation (training set):  t1-t2 0.1418  t1-t3 0.1527  t2-t3 0.1190\n"},
    {{"train", "--model", "shared_bottom", STANDARD},
     "  step    train/t1    train/t2 train/total      val/t1      val/t2   val/total     test/t1   "
     "  test/t2  test/total\n"
     "    20 2.1184686575841987 2.0839937472612049 4.202462404845404 2.2598865232636967 "
     "2.2182772710549297 4.4781637943186263 2.1965372812348365 2.210963839108242 "
     "4.4075011203430785\n"
     "    40 1.6762440566759835 1.6492615934632617 3.3255056501392461 2.2267153800669592 "
     "2.1749032597837616 4.4016186398507209 2.1201689002333861 2.2059575039531905 "
     "4.3261264041865761\n"
     "\n"
     "parameters: 13255\n"
     "final test loss:  t1 2.1201689002333861  t2 2.2059575039531905  total 4.3261264041865761\n"
     "predicting the training mean:  t1 1.8663334020651783  t2 2.0160587331211  total "
     "3.8823921351862785\n"
     "label Pearson correlation (training set):  t1-t2 0.1654\n"},
    {{"train", "--model", "omoe", SMALL},
     "  step    train/t1    train/t2    train/t3 train/total      val/t1      val/t2      val/t3   "
     "val/total     test/t1     test/t2     test/t3  test/total\n"
     "    25 1.7829178198765323 1.6355497663533953 1.6304211595120768 5.0488887457420057 "
     "1.4920765736686066 1.6237408910332316 1.8777475469790623 4.9935650116809001 "
     "1.5300310844381029 1.3123508607484091 1.8131199776691858 4.6555019228556977\n"
     "    50 1.425078326947272 1.137182559970473 1.3420566189940981 3.9043175059118425 "
     "1.086834777403098 0.91417917944128801 1.4996174057488778 3.5006313625932637 "
     "1.134353160051248 0.895542408341928 1.4437109923301865 3.4736065607233622\n"
     "    60 1.043590701785549 0.84348603109532194 0.82451959933271168 2.7115963322135825 "
     "0.7664437008979833 0.73995575651916246 1.2372688957799753 2.7436683531971209 "
     "0.96588732228333463 0.73883542057435314 1.2383709674618384 2.943093710319526\n"
     "\n"
     "parameters: 1037\n"
     "final test loss:  t1 0.96588732228333463  t2 0.73883542057435314  t3 1.2383709674618384  "
     "total 2.943093710319526\n"
     "predicting the training mean:  t1 1.6852023790697197  t2 1.7936678651702374  t3 "
     "1.9807371617646263  total 5.4596074060045829\n"
     "label Pearson correlation (training set):  t1-t2 0.1418  t1-t3 0.1527  t2-t3 0.1190\n"
     "\n"
     "mean gate weight per expert (test set, 90 examples):\n"
     "gate          e1      e2      e3      e4      e5\n"
     "shared    0.1500  0.2326  0.1978  0.2387  0.1808\n"},
    {{"train", "--model", "omoe", STANDARD},
     "  step    train/t1    train/t2 train/total      val/t1      val/t2   val/total     test/t1   "
     "  test/t2  test/total\n"
     "    20 3.0462886053570171 2.0448239615184014 5.0911125668754176 3.3208453608501531 "
     "2.3795612894333193 5.7004066502834725 2.9619513919349671 2.3257069072064023 "
     "5.2876582991413699\n"
     "    40 2.4248454201980705 1.7721870585806776 4.1970324787787492 2.9306654944750754 "
     "2.2319508679877953 5.1626163624628703 2.5891340743019646 2.2007031691451449 "
     "4.7898372434471099\n"
     "\n"
     "parameters: 14018\n"
     "final test loss:  t1 2.5891340743019646  t2 2.2007031691451449  total 4.7898372434471099\n"
     "predicting the training mean:  t1 1.8663334020651783  t2 2.0160587331211  total "
     "3.8823921351862785\n"
     "label Pearson correlation (training set):  t1-t2 0.1654\n"
     "\n"
     "mean gate weight per expert (test set, 300 examples):\n"
     "gate          e1      e2      e3      e4      e5      e6      e7      e8\n"
     "shared    0.1372  0.1131  0.1265  0.1234  0.1230  0.1422  0.1168  0.1178\n"},
    {{"train", "--model", "mmoe", SMALL},
     "  step    train/t1    train/t2    train/t3 train/total      val/t1      val/t2      val/t3   "
     "val/total     test/t1     test/t2     test/t3  test/total\n"
     "    25 1.983360079321564 1.9571997017545311 1.636857087323204 5.5774168683992995 "
     "1.4317913110398663 1.9454102685414163 1.7063644705592513 5.0835660501405346 "
     "1.4799508319536345 1.6293306223366137 1.6023940816225795 4.7116755359128275\n"
     "    50 1.1582018760284669 1.6670920665322457 1.2878032172649472 4.11309715982566 "
     "0.69628237999905351 1.6393456847642813 1.228690868904865 3.5643189336681997 "
     "0.91490087635916362 1.2338901860990228 1.0398634906574264 3.1886545531156125\n"
     "    60 0.59471075392247497 1.3895887845076895 0.64435183553988906 2.6286513739700541 "
     "0.51553277686168608 1.4685441846611829 1.0341708273861574 3.0182477889090262 "
     "0.78472719596201634 1.0049384060439659 0.86280210838899252 2.6524677103949745\n"
     "\n"
     "parameters: 1157\n"
     "final test loss:  t1 0.78472719596201634  t2 1.0049384060439659  t3 0.86280210838899252  "
     "total 2.6524677103949745\n"
     "predicting the training mean:  t1 1.6852023790697197  t2 1.7936678651702374  t3 "
     "1.9807371617646263  total 5.4596074060045829\n"
     "label Pearson correlation (training set):  t1-t2 0.1418  t1-t3 0.1527  t2-t3 0.1190\n"
     "\n"
     "mean gate weight per expert (test set, 90 examples):\n"
     "gate          e1      e2      e3      e4      e5\n"
     "t1        0.2337  0.1867  0.1699  0.1512  0.2585\n"
     "t2        0.2188  0.1749  0.1659  0.2287  0.2118\n"
     "t3        0.1574  0.1758  0.2521  0.1582  0.2565\n"},
    {{"train", "--model", "mmoe", STANDARD},
     "  step    train/t1    train/t2 train/total      val/t1      val/t2   val/total     test/t1   "
     "  test/t2  test/total\n"
     "    20 2.1936252460817203 1.9073205592052234 4.1009458052869441 2.3911718603820402 "
     "2.1988277126354201 4.5899995730174599 2.1464307615299472 2.1983320472303136 "
     "4.3447628087602608\n"
     "    40 1.8062290929377813 1.6795512527016598 3.4857803456394407 2.1725511110647173 "
     "2.1195712534969782 4.2921223645616955 1.9627705101753934 2.1692571997546031 "
     "4.1320277099299965\n"
     "\n"
     "parameters: 14818\n"
     "final test loss:  t1 1.9627705101753934  t2 2.1692571997546031  total 4.1320277099299965\n"
     "predicting the training mean:  t1 1.8663334020651783  t2 2.0160587331211  total "
     "3.8823921351862785\n"
     "label Pearson correlation (training set):  t1-t2 0.1654\n"
     "\n"
     "mean gate weight per expert (test set, 300 examples):\n"
     "gate          e1      e2      e3      e4      e5      e6      e7      e8\n"
     "t1        0.1258  0.1226  0.1302  0.1223  0.1079  0.1260  0.1291  0.1361\n"
     "t2        0.1262  0.1122  0.1407  0.1289  0.1141  0.1309  0.1304  0.1166\n"},
};

START_TEST(test_train_output_unchanged) {
    char *out, *err;
    ck_assert_int_eq(run_mtlab(&out, &err, golden[_i].args), 0);
    const char *body = strchr(out, '\n');
    ck_assert_ptr_nonnull(body);
    ck_assert_str_eq(body + 1, golden[_i].expect);
    free(out);
    free(err);
}
END_TEST

Suite *golden_suite(void) {
    Suite *s = suite_create("golden");
    TCase *tc = tcase_create("train");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_train_output_unchanged, 0,
                        (int)(sizeof golden / sizeof golden[0]));
    suite_add_tcase(s, tc);
    return s;
}
