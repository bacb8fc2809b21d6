// Conversations (issue 15) on the chat page, against the real server:
// @mention autocomplete by keyboard, a reply's quote that brings its
// original back from older history, reactions, editing with Up, deleting;
// each change seen live on a second page. The last test takes pictures of
// it all (CONV_SHOTS=dir also writes them there).
import { test, expect, Page, Browser, BrowserContextOptions } from '@playwright/test';
import path from 'node:path';
import { Server } from './server';
import { BOT, BUSY_ENV, BOT_TOKEN, joinAs, say, roomItem, expectNoPageErrors } from './helpers';

let server: Server;

test.beforeEach(async () => {
  server = new Server(BUSY_ENV);
  await server.start();
});

test.afterEach(async () => {
  await server.stop();
});

/** Posts as the bot; answers the stored message. */
async function post(body: string, extra: Record<string, unknown> = {}): Promise<{ id: number }> {
  const res = await fetch(`${server.url}/api/rooms/general/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${BOT_TOKEN}` },
    body: JSON.stringify({ body, ...extra }),
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return res.json();
}

/** The row of the message whose text has `text`. */
function row(page: Page, text: string | RegExp) {
  return page.locator('li.msg', { has: page.locator('.text', { hasText: text }) });
}

/** Hovers a message and presses one of its actions. */
async function act(page: Page, text: string, action: 'React' | 'Reply' | 'Edit' | 'Delete') {
  const r = row(page, text);
  const touch = await page.evaluate(() => matchMedia('(hover: none)').matches);
  if (!touch) {
    await r.locator('.msg-row').hover();
  } else if (!/actions-open/.test((await r.getAttribute('class')) ?? '')) {
    // No hover on a phone: a tap on the message (not on a control in it) opens its actions.
    await r.locator('.msg-row').tap({ position: { x: 6, y: 6 } });
  }
  await r.locator('.msg-actions').getByRole('button', { name: action, exact: true }).click();
}

test('@ lists the room’s people, chosen by keyboard; a mention stands out and is counted', async ({ browser }) => {
  const bob = await joinAs(browser, server, 'bob');
  const alice = await joinAs(browser, server, 'alice');
  await say(bob, 'hello from bob');
  await expect(row(alice, 'hello from bob')).toBeVisible();

  const box = alice.locator('#message');
  await box.pressSequentially('hi @b');
  const list = alice.getByRole('listbox', { name: 'People to mention' });
  await expect(list).toBeVisible();
  await expect(list.getByRole('option')).toHaveText([/bob/]);
  await expect(box).toHaveAttribute('aria-activedescendant', 'mention-0');
  await expect(list.getByRole('option').first()).toHaveAttribute('aria-selected', 'true');
  // Escape closes the list and keeps the text.
  await box.press('Escape');
  await expect(list).toBeHidden();
  await expect(box).toHaveValue('hi @b');
  // Typing again opens it; Enter chooses.
  await box.press('o');
  await expect(list).toBeVisible();
  await box.press('Enter');
  await expect(list).toBeHidden();
  await expect(box).toHaveValue('hi @bob ');
  await box.pressSequentially('look');
  await box.press('Enter');

  // bob sees it marked as mentioning him.
  await expect(row(bob, 'hi @bob look')).toHaveClass(/mentions-me/);
  await expect(row(alice, 'hi @bob look')).not.toHaveClass(/mentions-me/);

  // Out of the room, a mention is counted apart from the unread messages.
  await bob.locator('#join-room-input').fill('random');
  await bob.locator('#join-room-input').press('Enter');
  await expect(bob).toHaveURL(/\/r\/random$/);
  await box.pressSequentially('and @Bo');
  // Tab chooses too, and Down moves (one name: it stays on bob).
  await box.press('ArrowDown');
  await box.press('Tab');
  await expect(box).toHaveValue('and @bob ');
  await box.press('Enter');
  await say(alice, 'no mention here');
  const general = roomItem(bob, 'general');
  await expect(general.getByTestId('mention-badge')).toHaveText('@1');
  await expect(general.locator('.badge').first()).toHaveText('2');
  expectNoPageErrors(alice);
  expectNoPageErrors(bob);
});

test('a reply quotes its original; the quote brings it back from older history', async ({ browser }) => {
  test.setTimeout(120_000);
  const alice = await joinAs(browser, server, 'alice');
  await say(alice, 'the original question');
  await expect(row(alice, 'the original question')).toHaveAttribute('data-id', /\d+/);
  const original = Number(await row(alice, 'the original question').getAttribute('data-id'));
  for (let i = 1; i <= 80; i++) await post(`filler ${i}`);
  await post('a late answer', { reply_to: original });

  // A newcomer's page holds the newest 50: the original is not there.
  const bob = await joinAs(browser, server, 'bob');
  const reply = row(bob, 'a late answer');
  await expect(reply).toBeVisible();
  await expect(row(bob, 'the original question')).toHaveCount(0);
  const quote = reply.locator('.quote');
  await expect(quote).toHaveText('An earlier message');
  await quote.click();
  // Older pages come until it shows; it is brought into view, highlighted.
  const first = row(bob, 'the original question');
  await expect(first).toBeInViewport();
  await expect(first).toHaveClass(/flash/);
  await expect(quote).toContainText('alice');
  await expect(quote).toContainText('the original question');

  // Replying from the page: a preview above the box, × cancels it.
  await act(bob, 'the original question', 'Reply');
  const preview = bob.getByTestId('reply-preview');
  await expect(preview).toContainText('Replying to alice');
  await expect(preview).toContainText('the original question');
  await preview.getByRole('button', { name: 'Cancel the reply' }).click();
  await expect(preview).toHaveCount(0);
  await act(bob, 'the original question', 'Reply');
  await expect(bob.locator('#message')).toBeFocused();
  await say(bob, 'my answer too');
  await expect(preview).toHaveCount(0);
  // Seen live on alice's page with its quote, which jumps back up.
  const answer = row(alice, 'my answer too');
  await expect(answer.locator('.quote')).toContainText('the original question');
  // A page in the background gets no animation frames: its list follows the newest once shown.
  await alice.bringToFront();
  await expect(row(alice, 'the original question')).not.toBeInViewport();
  await answer.locator('.quote').click();
  await expect(row(alice, 'the original question')).toBeInViewport();

  // The original deleted: the quotes say so.
  await act(alice, 'the original question', 'Delete');
  await alice.getByRole('alertdialog').getByRole('button', { name: 'Delete' }).click();
  await expect(answer.locator('.quote')).toHaveText('The original message was deleted.');
  await expect(row(bob, 'my answer too').locator('.quote')).toHaveText('The original message was deleted.');
  expectNoPageErrors(alice);
  expectNoPageErrors(bob);
});

test('reactions toggle, with names, and are seen live', async ({ browser }) => {
  const alice = await joinAs(browser, server, 'alice');
  const bob = await joinAs(browser, server, 'bob');
  await say(alice, 'react to me');
  await act(bob, 'react to me', 'React');
  const picker = bob.getByRole('group', { name: 'Add a reaction' });
  await expect(picker.getByRole('button', { name: '👍' })).toBeFocused();
  await picker.getByRole('button', { name: '🎉' }).click();
  await expect(picker).toHaveCount(0);

  const seen = row(alice, 'react to me').locator('.reaction', { hasText: '🎉' });
  await expect(seen).toHaveText(/🎉\s*1/);
  await expect(seen).toHaveAttribute('aria-label', '🎉: bob');
  await expect(seen).toHaveAttribute('aria-pressed', 'false');
  const mine = row(bob, 'react to me').locator('.reaction', { hasText: '🎉' });
  await expect(mine).toHaveAttribute('aria-pressed', 'true');
  await expect(mine).toHaveAttribute('aria-label', '🎉: you');

  // alice adds hers by the chip: two.
  await seen.click();
  await expect(mine).toHaveText(/🎉\s*2/);
  await expect(mine).toHaveAttribute('aria-label', '🎉: you, alice');
  // bob takes his back, by keyboard.
  await mine.focus();
  await mine.press('Enter');
  await expect(seen).toHaveText(/🎉\s*1/);
  await expect(seen).toHaveAttribute('aria-pressed', 'true');
  await seen.click();
  await expect(row(alice, 'react to me').locator('.reaction', { hasText: '🎉' })).toHaveCount(0);
  await expect(row(bob, 'react to me').locator('.reactions')).toHaveCount(0);

  // Any emoji, typed.
  await act(bob, 'react to me', 'React');
  await picker.getByRole('textbox', { name: 'Any emoji' }).fill('🦀');
  await picker.getByRole('textbox', { name: 'Any emoji' }).press('Enter');
  await expect(row(alice, 'react to me').locator('.reaction', { hasText: '🦀' })).toHaveText(/🦀\s*1/);
  // Two emoji are not one: the server refuses, the page says so.
  await act(bob, 'react to me', 'React');
  await picker.getByRole('textbox', { name: 'Any emoji' }).fill('👍👍');
  await picker.getByRole('textbox', { name: 'Any emoji' }).press('Enter');
  await expect(bob.getByTestId('refused')).toContainText('Your reaction was not taken');
  await bob.getByTestId('refused').getByRole('button', { name: 'Dismiss' }).click();
  await expect(bob.getByTestId('refused')).toHaveCount(0);
  // Escape closes the picker, back on its button.
  await act(bob, 'react to me', 'React');
  await expect(picker).toBeVisible();
  await bob.keyboard.press('Escape');
  await expect(picker).toHaveCount(0);
  await expect(row(bob, 'react to me').getByRole('button', { name: 'React', exact: true })).toBeFocused();
  expectNoPageErrors(alice);
  expectNoPageErrors(bob);
});

test('Up edits my last message in place; the edit is seen live', async ({ browser }) => {
  const alice = await joinAs(browser, server, 'alice');
  const bob = await joinAs(browser, server, 'bob');
  await say(alice, 'first of mine');
  await say(alice, 'a tpyo here');
  await say(bob, 'bob speaks last');
  await expect(row(alice, 'bob speaks last')).toBeVisible();
  // Only one's own messages offer Edit.
  await row(alice, 'bob speaks last').locator('.msg-row').hover();
  await expect(row(alice, 'bob speaks last').getByRole('button', { name: 'Edit' })).toHaveCount(0);

  const box = alice.locator('#message');
  await box.focus();
  await box.press('ArrowUp');
  const edit = alice.getByRole('textbox', { name: 'Edit your message' });
  await expect(edit).toBeFocused();
  await expect(edit).toHaveValue('a tpyo here');
  // Escape cancels.
  await edit.press('Escape');
  await expect(edit).toHaveCount(0);
  await expect(box).toBeFocused();
  await box.press('ArrowUp');
  await edit.fill('a typo here');
  await edit.press('Shift+Enter');
  await edit.pressSequentially('fixed');
  await edit.press('Enter');
  await expect(edit).toHaveCount(0);

  const seen = row(bob, /a typo here\s*fixed/);
  await expect(seen).toBeVisible();
  await expect(seen.locator('.edited')).toHaveText('(edited)');
  await expect(seen.locator('.edited')).toHaveAttribute('title', /^Edited \d{4}-\d\d-\d\d/);
  await expect(row(bob, 'a tpyo here')).toHaveCount(0);
  await expect(row(alice, /a typo here\s*fixed/).locator('.edited')).toBeVisible();
  // A box with text: Up moves the caret, as ever.
  await box.fill('draft');
  await box.press('ArrowUp');
  await expect(edit).toHaveCount(0);
  expectNoPageErrors(alice);
  expectNoPageErrors(bob);
});

test('deleting asks first, then shows a discreet note everywhere', async ({ browser }) => {
  const alice = await joinAs(browser, server, 'alice');
  const bob = await joinAs(browser, server, 'bob');
  await say(alice, 'regrettable words');
  await say(bob, 'not alice’s');
  // Not hers: no Delete.
  await row(alice, 'not alice’s').locator('.msg-row').hover();
  await expect(row(alice, 'not alice’s').getByRole('button', { name: 'Delete' })).toHaveCount(0);

  await act(alice, 'regrettable words', 'Delete');
  const confirm = alice.getByRole('alertdialog', { name: 'Delete this message?' });
  await expect(confirm.getByRole('button', { name: 'Delete' })).toBeFocused();
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await expect(confirm).toHaveCount(0);
  await expect(row(bob, 'regrettable words')).toBeVisible();

  await act(alice, 'regrettable words', 'Delete');
  await confirm.getByRole('button', { name: 'Delete' }).click();
  for (const page of [alice, bob]) {
    await expect(page.locator('li.msg.deleted .deleted-note')).toHaveText('message deleted');
    await expect(page.getByText('regrettable words')).toHaveCount(0);
  }
  // A deleted message offers no actions.
  await expect(alice.locator('li.msg.deleted .msg-actions')).toHaveCount(0);
  // After a reload, still deleted.
  await bob.reload();
  await expect(bob.locator('li.msg.deleted .deleted-note')).toHaveText('message deleted');
  expectNoPageErrors(alice);
});

test('pictures: replies, reactions, an edit, a deletion, the picker and the mention list', async ({ browser }, testInfo) => {
  test.setTimeout(180_000);
  const dir = process.env.CONV_SHOTS || testInfo.outputPath();
  const scene = async (opts: BrowserContextOptions) => {
    const bob = await joinAs(browser, server, `bob`, '/', opts);
    const carol = await joinAs(browser, server, `carol`, '/', opts);
    await say(bob, 'Shipping the new release today. Anything blocking?');
    await say(carol, 'The migration needs one more look @bob before we go');
    await act(bob, 'The migration needs one more look', 'Reply');
    await say(bob, 'On it, give me ten minutes.');
    await act(carol, 'Shipping the new release today', 'React');
    await carol.getByRole('button', { name: '🎉', exact: true }).click();
    await act(bob, 'Shipping the new release today', 'React');
    await bob.getByRole('button', { name: '🎉', exact: true }).click();
    await act(bob, 'On it, give me ten minutes', 'React');
    await bob.getByRole('button', { name: '👀', exact: true }).click();
    await say(carol, 'oops, wrong room');
    await act(carol, 'oops, wrong room', 'Delete');
    await carol.getByRole('alertdialog').getByRole('button', { name: 'Delete' }).click();
    await say(bob, 'Release notes are in the wiki');
    await bob.locator('#message').press('ArrowUp');
    await bob.getByRole('textbox', { name: 'Edit your message' }).fill('Release notes are in the wiki, section 4.2');
    await bob.getByRole('textbox', { name: 'Edit your message' }).press('Enter');
    await expect(row(carol, 'section 4.2').locator('.edited')).toBeVisible();
    await expect(carol.locator('li.msg.deleted')).toHaveCount(1);
    return { bob, carol };
  };
  const shots: [string, BrowserContextOptions][] = [
    ['desktop-light', { viewport: { width: 1200, height: 760 }, colorScheme: 'light' }],
    ['desktop-dark', { viewport: { width: 1200, height: 760 }, colorScheme: 'dark' }],
    ['phone-light', { viewport: { width: 390, height: 780 }, colorScheme: 'light', hasTouch: true, isMobile: true }],
    ['phone-dark', { viewport: { width: 390, height: 780 }, colorScheme: 'dark', hasTouch: true, isMobile: true }],
  ];
  for (const [name, opts] of shots) {
    await server.stop();
    server = new Server({ CAUSERIE_BOT_TOKENS: BOT });
    await server.start();
    const { bob, carol } = await scene(opts);
    // The picker open on one message, and the mention list in the box.
    const phone = name.startsWith('phone');
    if (phone) {
      // No hover on a phone: a tap opens the actions.
      await row(carol, 'On it, give me ten minutes').locator('.msg-row').tap({ position: { x: 6, y: 6 } });
      await row(carol, 'On it, give me ten minutes').getByRole('button', { name: 'React', exact: true }).tap();
    } else {
      await act(carol, 'On it, give me ten minutes', 'React');
    }
    await expect(carol.getByRole('group', { name: 'Add a reaction' })).toBeVisible();
    await carol.screenshot({ path: path.join(dir, `conversation-picker-${name}.png`) });
    await carol.keyboard.press('Escape');
    await carol.locator('#message').pressSequentially('thanks @');
    await expect(carol.getByRole('listbox', { name: 'People to mention' })).toBeVisible();
    await carol.screenshot({ path: path.join(dir, `conversation-mention-${name}.png`) });
    await act(carol, 'Release notes are in the wiki', 'Reply');
    await carol.locator('#message').fill('');
    await carol.screenshot({ path: path.join(dir, `conversation-reply-${name}.png`) });
    expectNoPageErrors(bob);
    expectNoPageErrors(carol);
    await bob.context().close();
    await carol.context().close();
  }
});
