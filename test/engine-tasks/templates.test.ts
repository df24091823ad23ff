/** Every builtin template renders exactly as paper-protocol.md specifies (hand-written expected strings). */
import { describe, expect, it } from 'vitest';
import { BUILTIN_TASKS } from '../../engine/vocabulary.ts';
import { customTaskSchema } from '../../sweepspec/schema.ts';
import { resolveCustomTask } from '../../engine/tasks/definitions.ts';
import { BUILTIN_DEFINITIONS, resolveTask } from '../../engine/tasks/registry.ts';
import { renderChoices, renderDemo, renderDemos, renderQuery } from '../../engine/tasks/render.ts';
import { EngineInputError } from '../../engine/types.ts';

const T = BUILTIN_DEFINITIONS;

describe('builtin templates', () => {
  it('covers the seven tasks of engine/vocabulary.ts', () => {
    expect(Object.keys(T).sort()).toEqual([...BUILTIN_TASKS].sort());
  });

  it('sst2', () => {
    const row = { sentence: 'a gorgeous , witty , seductive movie . ', label: 1 };
    expect(renderDemo(T.sst2, row, 1)).toBe('text: a gorgeous , witty , seductive movie . \n sentiment : pos \n');
    expect(renderDemo(T.sst2, row, 0)).toBe('text: a gorgeous , witty , seductive movie . \n sentiment : neg \n');
    // The query strips the sentence (the paper's question.strip()).
    expect(renderQuery(T.sst2, row)).toBe('text: a gorgeous , witty , seductive movie .\n sentiment :');
    expect(T.sst2.verbalizers).toEqual([' neg', ' pos']);
    expect(T.sst2.labels['1']).toBe(1);
    expect(T.sst2.labels['positive']).toBe(1);
  });

  it('emoc: "others" is pos, every emotion is neg (as the paper\'s code)', () => {
    const row = { text: 'i am so happy today ', label: 1 };
    expect(renderDemo(T.emoc, row, T.emoc.labels['1'])).toBe('text: i am so happy today \n sentiment : neg \n');
    expect(renderDemo(T.emoc, row, T.emoc.labels['0'])).toBe('text: i am so happy today \n sentiment : pos \n');
    expect(renderQuery(T.emoc, row)).toBe('text: i am so happy today\n sentiment :');
    expect(T.emoc.verbalizers).toEqual([' pos', ' neg']);
    expect([0, 1, 2, 3].map((l) => T.emoc.labels[String(l)])).toEqual([0, 1, 1, 1]);
  });

  it('agnews', () => {
    const row = { text: 'Wall St. Bears Claw Back Into the Black ', label: 2 };
    expect(renderDemo(T.agnews, row, 2)).toBe('text: Wall St. Bears Claw Back Into the Black \n sentiment : business \n');
    expect(renderDemo(T.agnews, row, 3)).toBe('text: Wall St. Bears Claw Back Into the Black \n sentiment : science \n');
    expect(renderQuery(T.agnews, row)).toBe('text: Wall St. Bears Claw Back Into the Black\n sentiment :');
    expect(T.agnews.verbalizers).toEqual([' world', ' sports', ' business', ' science']);
    expect(T.agnews.labels['Sci/Tech']).toBe(3);
  });

  it('mrpc', () => {
    const row = { sentence1: 'Amrozi accused his brother .', sentence2: 'Referring to him . ', label: 1 };
    expect(renderDemo(T.mrpc, row, 1)).toBe('sentence1: Amrozi accused his brother . \n sentence2: Referring to him . \n label : true \n');
    expect(renderDemo(T.mrpc, row, 0)).toBe('sentence1: Amrozi accused his brother . \n sentence2: Referring to him . \n label : false \n');
    expect(renderQuery(T.mrpc, row)).toBe('sentence1: Amrozi accused his brother . \n sentence2: Referring to him .\n label :');
    expect(T.mrpc.verbalizers).toEqual([' false', ' true']);
  });

  it('rte', () => {
    const row = { premise: 'No Weapons of Mass Destruction Found in Iraq Yet.', hypothesis: 'Weapons of Mass Destruction Found in Iraq.', label: 1 };
    expect(renderDemo(T.rte, row, 1)).toBe(
      'No Weapons of Mass Destruction Found in Iraq Yet. Does this mean that Weapons of Mass Destruction Found in Iraq. is true? select Yes or No? No\n',
    );
    expect(renderDemo(T.rte, row, 0)).toBe(
      'No Weapons of Mass Destruction Found in Iraq Yet. Does this mean that Weapons of Mass Destruction Found in Iraq. is true? select Yes or No? Yes\n',
    );
    expect(renderQuery(T.rte, row)).toBe(
      'No Weapons of Mass Destruction Found in Iraq Yet. Does this mean that Weapons of Mass Destruction Found in Iraq. is true? select Yes or No? ',
    );
    expect(T.rte.verbalizers).toEqual([' Yes', ' No']);
    expect(T.rte.labels['not_entailment']).toBe(1);
  });

  it('cb: demonstrations write "Mi" for Maybe, the verbalizer is " Maybe"', () => {
    const row = { premise: 'It was a complex language.', hypothesis: 'the language was peeled down', label: 2 };
    expect(renderDemo(T.cb, row, 2)).toBe("Suppose It was a complex language. Can we infer that 'the language was peeled down'? Yes, No, or Maybe? Mi\n");
    expect(renderDemo(T.cb, row, 1)).toBe("Suppose It was a complex language. Can we infer that 'the language was peeled down'? Yes, No, or Maybe? No\n");
    expect(renderDemo(T.cb, row, 0)).toBe("Suppose It was a complex language. Can we infer that 'the language was peeled down'? Yes, No, or Maybe? Yes\n");
    expect(renderQuery(T.cb, row)).toBe("Suppose It was a complex language. Can we infer that 'the language was peeled down'? Yes, No, or Maybe? ");
    expect(T.cb.verbalizers).toEqual([' Yes', ' No', ' Maybe']);
    expect(T.cb.labels['neutral']).toBe(2);
  });

  it('copa', () => {
    const row = { premise: 'My body cast a shadow over the grass.', choice1: 'The sun was rising.', choice2: 'The grass was cut.', question: 'cause', label: 0 };
    expect(renderDemo(T.copa, row, 0)).toBe('My body cast a shadow over the grass.\ncause\nThe sun was rising.\n');
    expect(renderDemo(T.copa, row, 1)).toBe('My body cast a shadow over the grass.\ncause\nThe grass was cut.\n');
    expect(renderChoices(T.copa, row)).toEqual({
      context: 'My body cast a shadow over the grass.\ncause\n',
      continuations: ['The sun was rising.\n', 'The grass was cut.\n'],
    });
    expect(T.copa.kind).toBe('multiple-choice');
  });

  it('demonstrations are concatenated with nothing in between', () => {
    const a = { sentence: 'good film', label: 1 };
    const b = { sentence: 'bad film', label: 0 };
    expect(renderDemos(T.sst2, [{ row: a, label: 1 }, { row: b, label: 0 }])).toBe(
      'text: good film\n sentiment : pos \ntext: bad film\n sentiment : neg \n',
    );
  });

  it('protocol defaults: shots, seeds, interleaving, test source', () => {
    const got = Object.fromEntries(BUILTIN_TASKS.map((t) => [t, [T[t].defaults.shots, T[t].defaults.seed, T[t].testSplit]]));
    expect(got).toEqual({
      sst2: [10, 49, 'auto'],
      emoc: [10, 72, 'auto'],
      mrpc: [10, 42, 'auto'],
      agnews: [8, 42, 'auto'],
      rte: [5, 66, 'validation'],
      cb: [5, 66, 'validation'],
      copa: [5, 66, 'validation'],
    });
    expect(T.sst2.interleave).toEqual([1, 0]);
    expect(T.cb.interleave).toEqual([0, 2, 1]);
    expect(T.agnews.interleave).toEqual([0, 1, 2, 3]);
  });
});

describe('custom task', () => {
  const task = resolveCustomTask(
    customTaskSchema.parse({ template: 'Review: {review}\nVerdict: {answer}\n', answers: { good: 'Yes', bad: 'No' }, labelField: 'verdict' }),
  );

  it('renders demonstrations and the query (text before {answer}, less its trailing space)', () => {
    const row = { review: 'a great film', verdict: 'good' };
    expect(renderDemo(task, row, 0)).toBe('Review: a great film\nVerdict: Yes\n');
    expect(renderDemo(task, row, 1)).toBe('Review: a great film\nVerdict: No\n');
    expect(renderQuery(task, row)).toBe('Review: a great film\nVerdict:');
    expect(task.verbalizers).toEqual([' Yes', ' No']);
    expect(task.fields).toEqual(['review']);
    expect(task.labelField).toBe('verdict');
    expect(task.labels).toEqual({ good: 0, bad: 1 });
  });

  it('without a space before {answer}, demonstrations still show the scored " word"', () => {
    const t2 = resolveTask(customTaskSchema.parse({ template: 'Q: {q} A:{answer}.', answers: { '1': 'true', '0': 'false' } }));
    // Integer-like keys enumerate in ascending order (JavaScript objects): class 0 is label "0".
    expect(t2.classes).toEqual(['false', 'true']);
    expect(renderDemo(t2, { q: 'is it', label: 1 }, t2.labels['1'])).toBe('Q: is it A: true.');
    expect(renderQuery(t2, { q: 'is it' })).toBe('Q: is it A:');
    expect(t2.labelField).toBe('label');
  });

  it('a field value containing braces is not re-expanded', () => {
    expect(renderQuery(task, { review: '{answer} {review}' })).toBe('Review: {answer} {review}\nVerdict:');
  });

  it('rejects answers with spaces', () => {
    expect(() => resolveCustomTask({ template: '{x} {answer}', answers: { a: ' Yes', b: 'No' }, labelField: 'label' })).toThrow(EngineInputError);
  });
});
